//! A recording HTTP proxy in front of moto's S3, for what moto cannot show:
//!
//! - bucket ownership: moto ignores `x-amz-expected-bucket-owner`; the proxy
//!   answers 403 AccessDenied, as S3 does, when the header names another
//!   account than the bucket's configured owner;
//! - what went over the wire: every request's method, path and query, body
//!   length and expected-owner header, so tests can count parts and bytes.
//!
//! It forwards bytes unchanged (the SigV4 signature covers the Host header,
//! which stays the proxy's), one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// GET, PUT, POST, HEAD, DELETE.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// `x-amz-expected-bucket-owner`, if sent.
    pub expected_owner: Option<String>,
    /// Body bytes.
    pub body_len: u64,
}

impl Seen {
    /// The `partNumber` of an UploadPart request.
    pub fn part_number(&self) -> Option<u32> {
        if self.method != "PUT" {
            return None;
        }
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|kv| kv.strip_prefix("partNumber=")).and_then(|n| n.parse().ok())
    }
}

/// The proxy; runs until the test process ends.
pub struct S3Proxy {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    fail_part: Arc<Mutex<Option<u32>>>,
    tamper: Arc<std::sync::atomic::AtomicBool>,
}

impl S3Proxy {
    /// Forwards to `upstream` (`http://127.0.0.1:PORT`), as a bucket owned by
    /// `bucket_owner`.
    pub fn start(upstream: &str, bucket_owner: &str) -> S3Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fail_part = Arc::new(Mutex::new(None));
        let tamper = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, owner, fail, tampering) = (seen.clone(), bucket_owner.to_string(), fail_part.clone(), tamper.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (log, owner, upstream) = (log.clone(), owner.clone(), upstream.clone());
                let opts =
                    Faults { fail_part: *fail.lock().unwrap(), tamper: tampering.load(std::sync::atomic::Ordering::SeqCst) };
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &owner, opts, &log);
                });
            }
        });
        S3Proxy { endpoint, seen, fail_part, tamper }
    }

    /// From now on, HEAD answers report a SHA-256 checksum other than the
    /// one S3 stored, as if the object had been altered.
    pub fn tamper_checksums(&self) {
        self.tamper.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Denies every UploadPart of part `n` from now on, as S3 would deny a
    /// request (403 AccessDenied, which the SDK does not retry).
    pub fn fail_part(&self, n: u32) {
        *self.fail_part.lock().unwrap() = Some(n);
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_S3`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets what was seen.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Writes a head with any `Connection` header replaced by `close`.
fn write_head(w: &mut impl Write, lines: &[String]) -> std::io::Result<()> {
    let mut out = String::new();
    for l in lines.iter().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    w.write_all(out.as_bytes())
}

/// Faults the proxy injects into one connection.
#[derive(Clone, Copy)]
struct Faults {
    fail_part: Option<u32>,
    tamper: bool,
}

fn serve(client: TcpStream, upstream: &str, owner: &str, faults: Faults, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    let fail_part = faults.fail_part;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client_w = client;
    let head = read_head(&mut reader)?;
    let mut parts = head[0].split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    assert!(header(&head, "transfer-encoding").is_none(), "the proxy only forwards Content-Length bodies");
    let body_len: u64 = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let expected_owner = header(&head, "x-amz-expected-bucket-owner").map(String::from);
    let seen = Seen { method: method.clone(), target: target.clone(), expected_owner: expected_owner.clone(), body_len };
    let denied_part = fail_part.is_some() && seen.part_number() == fail_part;
    log.lock().unwrap().push(seen);

    if denied_part || expected_owner.as_deref().is_some_and(|o| o != owner) {
        // What S3 answers when ExpectedBucketOwner is not the bucket's owner.
        std::io::copy(&mut (&mut reader).take(body_len), &mut std::io::sink())?;
        let body = if method == "HEAD" {
            String::new()
        } else {
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                .to_string()
        };
        let resp = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            if method == "HEAD" { "" } else { &body }
        );
        client_w.write_all(resp.as_bytes())?;
        return client_w.flush();
    }

    let up = TcpStream::connect(upstream)?;
    let mut up_w = up.try_clone()?;
    write_head(&mut up_w, &head)?;
    std::io::copy(&mut (&mut reader).take(body_len), &mut up_w)?;
    up_w.flush()?;
    let mut up_r = BufReader::new(up);
    let mut resp_head = read_head(&mut up_r)?;
    if method == "GET" && target.contains("uploadId=") {
        // moto 5.2 names ListParts' root element `ListPartsResponse`; S3 (and
        // the SDK's parser) say `ListPartsResult`. Fixed here so the test
        // exercises ferry against what S3 sends.
        let mut body = String::new();
        up_r.read_to_string(&mut body)?;
        let body = body.replace("ListPartsResponse", "ListPartsResult");
        resp_head.retain(|l| !l.to_ascii_lowercase().starts_with("content-length:"));
        resp_head.push(format!("Content-Length: {}", body.len()));
        write_head(&mut client_w, &resp_head)?;
        client_w.write_all(body.as_bytes())?;
        client_w.flush()?;
        return client_w.shutdown(std::net::Shutdown::Both);
    }
    if faults.tamper && method == "HEAD" {
        for l in resp_head.iter_mut().filter(|l| l.to_ascii_lowercase().starts_with("x-amz-checksum-sha256:")) {
            *l = "x-amz-checksum-sha256: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
        }
    }
    write_head(&mut client_w, &resp_head)?;
    std::io::copy(&mut up_r, &mut client_w)?;
    client_w.flush()?;
    client_w.shutdown(std::net::Shutdown::Both)
}
