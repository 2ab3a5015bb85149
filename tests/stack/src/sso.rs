//! An IAM Identity Center (SSO) portal stand-in on loopback: the one call
//! an SSO profile makes for credentials, `GetRoleCredentials`
//! (`GET /federation/credentials?role_name=…&account_id=…` with the access
//! token in `x-amz-sso_bearer_token`), answered with credentials the test
//! chose (ones moto accepts), and only for the token the test wrote into
//! the SSO token cache ([`write_token_cache`]) as `aws sso login` would.
//!
//! Real portals also check that the account and role are assigned to the
//! user; this one checks they are the ones it was started for. It serves
//! nothing else (no device authorization, no token refresh: an expired token
//! must make the SDK give up, which is what the tests show).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the portal hands out, and to whom.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The only access token it accepts.
    pub access_token: String,
    /// `sso_account_id` it serves.
    pub account_id: String,
    /// `sso_role_name` it serves.
    pub role_name: String,
    /// Access key id of the credentials it answers with.
    pub access_key_id: String,
    /// Their secret key.
    pub secret_access_key: String,
    /// Their session token, if any.
    pub session_token: Option<String>,
    /// When they expire.
    pub expiration: SystemTime,
}

/// A running portal. Stops accepting when dropped (its thread lingers on
/// the listener until the process ends; it holds nothing else).
pub struct SsoPortal {
    endpoint: String,
    served: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl SsoPortal {
    /// Starts the portal on a free loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(grant: Grant) -> SsoPortal {
        let listener = TcpListener::bind("127.0.0.1:0").expect("ferry-test-stack: bind the SSO portal");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        let served = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (served.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (grant, s, r) = (grant.clone(), s.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &grant, &s, &r));
            }
        });
        SsoPortal { endpoint, served, refused }
    }

    /// `http://127.0.0.1:PORT`: what `AWS_ENDPOINT_URL_SSO` names.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many GetRoleCredentials calls were answered with credentials.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Why each refused call was refused.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Writes the SSO token cache entry `aws sso login` leaves behind:
/// `<home>/.aws/sso/cache/<sha1(key)>.json`, where `key` is the
/// `sso_session` name (or, for a legacy profile, the `sso_start_url`).
/// Returns the file's path.
///
/// # Panics
/// If the file cannot be written.
pub fn write_token_cache(home: &Path, key: &str, access_token: &str, start_url: &str, expires_at: SystemTime) -> PathBuf {
    use sha1::Digest;
    let dir = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("ferry-test-stack: create {}: {e}", dir.display()));
    let path = dir.join(format!("{}.json", hex::encode(sha1::Sha1::digest(key.as_bytes()))));
    let body = serde_json::json!({
        "startUrl": start_url,
        "region": crate::REGION,
        "accessToken": access_token,
        "expiresAt": rfc3339(expires_at),
    });
    std::fs::write(&path, body.to_string()).unwrap_or_else(|e| panic!("ferry-test-stack: write {}: {e}", path.display()));
    path
}

/// `2026-12-07T02:00:00Z`, as the SSO cache writes times.
fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t).fmt(aws_smithy_types::date_time::Format::DateTime).expect("a representable time")
}

fn serve(stream: TcpStream, grant: &Grant, served: &AtomicUsize, refused: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut token = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("x-amz-sso_bearer_token")
        {
            token = Some(value.trim().to_string());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=').map(str::to_string));
    let verdict = if line.split_whitespace().next() != Some("GET") || path != "/federation/credentials" {
        Err((404, "ResourceNotFoundException", format!("no such call: {}", line.trim())))
    } else if token.as_deref() != Some(grant.access_token.as_str()) {
        Err((401, "UnauthorizedException", "Session token not found or invalid".to_string()))
    } else if param("account_id").as_deref() != Some(&grant.account_id) || param("role_name").as_deref() != Some(&grant.role_name)
    {
        Err((403, "ForbiddenException", "No access".to_string()))
    } else {
        Ok(())
    };
    let mut out = stream;
    match verdict {
        Ok(()) => {
            served.fetch_add(1, Ordering::SeqCst);
            let millis = grant.expiration.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            let body = serde_json::json!({"roleCredentials": {
                "accessKeyId": grant.access_key_id,
                "secretAccessKey": grant.secret_access_key,
                "sessionToken": grant.session_token,
                "expiration": millis,
            }});
            respond(&mut out, 200, None, &body.to_string());
        }
        Err((status, kind, message)) => {
            refused.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{kind}: {message}"));
            respond(&mut out, status, Some(kind), &serde_json::json!({ "message": message }).to_string());
        }
    }
}

fn respond(out: &mut TcpStream, status: u16, error_type: Option<&str>, body: &str) {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "Not Found",
    };
    let kind = error_type.map(|k| format!("x-amzn-ErrorType: {k}\r\n")).unwrap_or_default();
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
