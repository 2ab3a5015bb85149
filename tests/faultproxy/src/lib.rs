//! A fault-injecting HTTP/1.1 proxy for ferry's tests.
//!
//! [`FaultProxy::start`] listens on a loopback port and forwards every
//! request to one upstream (moto or the CodeDeploy emulator). Point
//! `AWS_ENDPOINT_URL*` at [`FaultProxy::endpoint`] and the SDK's requests pass
//! through it unchanged (same `Host` header, so signatures still verify),
//! except when a [`Rule`] fires: then the request is answered with an S3 or
//! STS error, a CodeDeploy `ThrottlingException`, a connection cut mid-body,
//! a delay, a stall (accepted, then silent), or forwarded with one byte of its
//! body flipped. [`FaultProxy::set_down`] makes the endpoint refuse
//! everything for a while; [`FaultProxy::set_stalled`] makes it accept
//! everything and answer nothing, as a hung load balancer does.
//!
//! moto stores whatever checksum header it is sent, where S3 computes it
//! from the bytes it received; [`FaultProxy::report_stored_checksums`] makes
//! the proxy correct that on the way back, so a body corrupted in transit
//! shows up in the read-back as it would on S3.
//!
//! Every fault is counted ([`FaultProxy::stats`]) so a test can assert that
//! the faults it asked for really happened, not just that ferry succeeded.
//!
//! The proxy speaks HTTP/1.1 with keep-alive (hyper's server), answers
//! `Expect: 100-continue` itself and forwards bodies with a content length,
//! whether the client sent them chunked or not. One upstream connection per
//! request: simple, and loopback connections are cheap.

mod body;
mod classify;
mod rng;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

pub use classify::operation;

use body::{CutBody, ProxyBody};
use rng::Draws;

/// Which requests a [`Rule`] looks at.
#[derive(Clone, Debug)]
pub enum Match {
    /// Every request.
    Any,
    /// Requests whose operation (see [`operation`]) is one of these, e.g.
    /// `PutObject`, `AssumeRole`, `GetDeployment`.
    Ops(Vec<&'static str>),
}

impl Match {
    fn matches(&self, op: &str) -> bool {
        match self {
            Match::Any => true,
            Match::Ops(ops) => ops.contains(&op),
        }
    }
}

/// When a matching request gets the fault.
#[derive(Clone, Debug)]
pub enum Chance {
    /// Every matching request.
    Always,
    /// The first `n` matching requests, then never.
    FirstN(u64),
    /// Every `n`th matching request (the `n`th, `2n`th, ...).
    EveryNth(u64),
    /// Each matching request independently with this probability, drawn from
    /// the proxy's seed and the request (operation, path and query, and
    /// which attempt at it this is), so a fixed seed replays a run exactly,
    /// whatever order concurrent requests arrive in.
    Fraction(f64),
}

/// What happens to a request a rule fires on.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An S3-style XML error (`<Error><Code>..`), e.g. 503 `SlowDown` or 500
    /// `InternalError`. The request is not forwarded.
    S3Error {
        /// HTTP status.
        status: u16,
        /// S3 error code.
        code: &'static str,
    },
    /// An STS/IAM-style XML error (`<ErrorResponse><Error>..`), e.g. 403
    /// `AccessDenied`. The request is not forwarded.
    StsError {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: &'static str,
        /// Error message.
        message: &'static str,
    },
    /// A JSON-protocol `ThrottlingException` (400), as CodeDeploy sends.
    Throttle,
    /// The connection is cut mid-body: halfway through the request body when
    /// there is one (nothing is forwarded), otherwise halfway through the
    /// upstream's response body.
    Reset,
    /// Forward the whole request, so the server acts on it, then cut the
    /// connection halfway through its answer: the client never learns what
    /// happened (a lost CreateDeployment answer).
    LoseResponse,
    /// Wait this long, then forward normally.
    Delay(Duration),
    /// Flip one byte in the middle of the request body, optionally drop a
    /// header too (e.g. the `x-amz-checksum-sha256` S3 would verify the body
    /// against), then forward.
    CorruptBody {
        /// A request header to remove as well.
        drop_header: Option<&'static str>,
    },
    /// Forward without this request header (e.g. a middlebox that drops
    /// `x-amz-checksum-sha256`).
    DropHeader(&'static str),
    /// A JSON-protocol error with this code (`__type` and
    /// `x-amzn-errortype`), as CodeDeploy sends, e.g. 400
    /// `DeploymentLimitExceededException`. The request is not forwarded.
    JsonError {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: &'static str,
    },
    /// Accept the request and answer nothing: its body is left unread and
    /// the connection open and silent until [`FaultProxy::release_stalls`]
    /// (then it is forwarded as if nothing happened) or the client gives up.
    Stall,
    /// Forward the request, send the answer's head and half its body, then
    /// go silent with the connection open ("stops mid-body"), until
    /// [`FaultProxy::release_stalls`] or the client gives up.
    StallMidBody,
    /// Answer this status with an empty body and forward nothing: the client
    /// is told it worked, the server never heard of it (e.g. an abort that
    /// S3 acknowledged while a part was still landing, so the upload is
    /// still there afterwards).
    Swallow(u16),
}

impl Fault {
    /// The name the fault is counted under in [`Stats::faults`].
    pub fn name(&self) -> &'static str {
        match self {
            Fault::S3Error { code, .. } | Fault::StsError { code, .. } => code,
            Fault::Throttle => "ThrottlingException",
            Fault::Reset => "reset",
            Fault::LoseResponse => "lose-response",
            Fault::Delay(_) => "delay",
            Fault::CorruptBody { .. } => "corrupt",
            Fault::DropHeader(_) => "drop-header",
            Fault::JsonError { code, .. } => code,
            Fault::Stall => "stall",
            Fault::StallMidBody => "stall-mid-body",
            Fault::Swallow(_) => "swallow",
        }
    }
}

/// One fault-injection rule. Rules are tried in order; the first that fires
/// decides what happens to the request.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Which requests.
    pub when: Match,
    /// How often.
    pub chance: Chance,
    /// What happens.
    pub fault: Fault,
}

impl Rule {
    /// Shorthand for `Rule { when, chance, fault }`.
    pub fn new(when: Match, chance: Chance, fault: Fault) -> Rule {
        Rule { when, chance, fault }
    }
}

/// What the proxy has seen and done so far.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests received (including faulted ones).
    pub requests: u64,
    /// Requests by operation name.
    pub ops: BTreeMap<String, u64>,
    /// Faults injected, by [`Fault::name`], plus `refused` for connections
    /// and requests turned away while down, and `stall` for requests held
    /// while stalled.
    pub faults: BTreeMap<&'static str, u64>,
    /// Requests forwarded whose upstream answer came back, by operation: the
    /// server has acted on them.
    pub answered: BTreeMap<String, u64>,
    /// Requests received and not yet done with (answered, refused, or given
    /// up by the client): 0 means nothing is held or on its way upstream.
    pub in_flight: u64,
    /// When each request arrived, by operation, on the test's own clock
    /// (`Instant`), so a test can time ferry from outside it.
    pub arrivals: BTreeMap<String, Vec<Instant>>,
}

impl Stats {
    /// How many times the named fault was injected.
    pub fn fault(&self, name: &str) -> u64 {
        self.faults.get(name).copied().unwrap_or(0)
    }

    /// How many requests of this operation arrived.
    pub fn op(&self, name: &str) -> u64 {
        self.ops.get(name).copied().unwrap_or(0)
    }

    /// All injected faults together.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    /// How many requests of this operation the upstream answered.
    pub fn answered(&self, name: &str) -> u64 {
        self.answered.get(name).copied().unwrap_or(0)
    }

    /// When the first request of this operation arrived.
    pub fn first_seen(&self, name: &str) -> Option<Instant> {
        self.arrivals.get(name).and_then(|t| t.first()).copied()
    }

    /// The pauses between consecutive requests of this operation.
    pub fn gaps(&self, name: &str) -> Vec<Duration> {
        let times = self.arrivals.get(name).map(Vec::as_slice).unwrap_or_default();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// Counts one request in [`Stats::in_flight`] for as long as it lives: its
/// handler may end by returning or by being dropped when the client hangs up.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> InFlight {
        shared.stats.lock().unwrap().in_flight += 1;
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.stats.lock().unwrap().in_flight -= 1;
    }
}

struct RuleState {
    rule: Rule,
    seen: u64,
}

struct Shared {
    upstream: SocketAddr,
    rules: Mutex<Vec<RuleState>>,
    draws: Mutex<Draws>,
    down: AtomicBool,
    /// While set, every request is held unanswered ([`Fault::Stall`]).
    stalled: AtomicBool,
    /// Bumped by [`FaultProxy::release_stalls`]; a held request waits for
    /// it to pass the value it saw on arrival.
    releases: tokio::sync::watch::Sender<u64>,
    stats: Mutex<Stats>,
    /// SHA-256 (base64) of the last body forwarded by PutObject, by path.
    stored: Mutex<BTreeMap<String, String>>,
    true_checksums: AtomicBool,
}

impl Shared {
    fn count_fault(&self, name: &'static str) {
        *self.stats.lock().unwrap().faults.entry(name).or_default() += 1;
    }

    /// Decides the fault (if any) for a request of operation `op`; `key`
    /// names the request for [`Chance::Fraction`]'s draws.
    fn decide(&self, op: &str, key: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        for (index, state) in rules.iter_mut().enumerate() {
            if !state.rule.when.matches(op) {
                continue;
            }
            state.seen += 1;
            let fire = match state.rule.chance {
                Chance::Always => true,
                Chance::FirstN(n) => state.seen <= n,
                Chance::EveryNth(n) => n > 0 && state.seen % n == 0,
                Chance::Fraction(p) => self.draws.lock().unwrap().next(index, key) < p,
            };
            if fire {
                return Some(state.rule.fault.clone());
            }
        }
        None
    }
}

/// A running proxy. Stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<Runtime>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`
    /// (`http://127.0.0.1:PORT`), with no rules and the given RNG seed.
    ///
    /// # Panics
    /// If the upstream is not a loopback `http://IP:PORT` or no port can be bound.
    pub fn start(upstream: &str, seed: u64) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("faultproxy: upstream {upstream} is not http://IP:PORT: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("faultproxy")
            .enable_all()
            .build()
            .expect("faultproxy: tokio runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("faultproxy: bind a loopback port");
        let addr = listener.local_addr().expect("faultproxy: local address");
        let shared = Arc::new(Shared {
            upstream,
            rules: Mutex::new(Vec::new()),
            draws: Mutex::new(Draws::new(seed)),
            down: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            releases: tokio::sync::watch::Sender::new(0),
            stats: Mutex::new(Stats::default()),
            stored: Mutex::new(BTreeMap::new()),
            true_checksums: AtomicBool::new(false),
        });
        runtime.spawn(accept_loop(listener, shared.clone()));
        FaultProxy { addr, shared, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL*`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rules (and resets their counters).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.shared.rules.lock().unwrap() = rules.into_iter().map(|rule| RuleState { rule, seen: 0 }).collect();
    }

    /// While down, new connections are reset as soon as they are accepted and
    /// requests on open keep-alive connections are dropped unanswered.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// While stalled, every request (on new and open connections alike) is
    /// accepted and left unanswered, counted as `stall`. Turning it off
    /// releases the held requests, which are then forwarded.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::SeqCst);
        if !stalled {
            self.release_stalls();
        }
    }

    /// Lets every request held by a stall go on: [`Fault::Stall`] requests
    /// are forwarded, [`Fault::StallMidBody`] answers are finished.
    pub fn release_stalls(&self) {
        self.shared.releases.send_modify(|n| *n += 1);
    }

    /// When on, HeadObject/GetObject answers carry the SHA-256 of the bytes
    /// the proxy actually forwarded with PutObject to that path, as S3 would
    /// report them, instead of moto's echo of the client's header. Counted as
    /// `stored-checksum` when it changes an answer.
    pub fn report_stored_checksums(&self, on: bool) {
        self.shared.true_checksums.store(on, Ordering::SeqCst);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        if shared.down.load(Ordering::SeqCst) {
            shared.count_fault("refused");
            // Linger 0 turns the close into a RST, as a dead load balancer does.
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            let _ =
                hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Headers that describe one hop, not the message: never forwarded.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<ProxyBody>, BoxError> {
    let _flight = InFlight::new(&shared);
    if shared.down.load(Ordering::SeqCst) {
        shared.count_fault("refused");
        return Err("endpoint is down".into());
    }
    if shared.stalled.load(Ordering::SeqCst) {
        {
            let mut stats = shared.stats.lock().unwrap();
            stats.requests += 1;
        }
        shared.count_fault("stall");
        hold(&shared).await;
    }
    let (mut parts, mut incoming) = req.into_parts();
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());

    // Read the body frame by frame so a reset can happen halfway through it.
    let op_hint = classify::operation(&parts.method, &parts.uri, &parts.headers, b"");
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    let mut fault: Option<Fault> = None;
    let mut decided = false;
    if !op_needs_body(&op_hint) {
        fault = decide(&shared, &op_hint, &request_key(&op_hint, &parts.uri));
        decided = true;
    }
    if decided && matches!(fault, Some(Fault::Stall)) {
        // Silent with the body unread: the client's send blocks or waits.
        hold(&shared).await;
    }
    while let Some(frame) = incoming.frame().await {
        if let Ok(data) = frame?.into_data() {
            body.extend_from_slice(&data);
        }
        if decided && matches!(fault, Some(Fault::Reset)) && body.len() * 2 >= declared.unwrap_or(2) {
            return Err("faultproxy: connection cut mid-request-body".into());
        }
    }
    if !decided {
        let op = classify::operation(&parts.method, &parts.uri, &parts.headers, &body);
        fault = decide(&shared, &op, &request_key(&op, &parts.uri));
    }

    match fault {
        Some(Fault::S3Error { status, code }) => return Ok(xml_error(status, s3_error_body(code))),
        Some(Fault::StsError { status, code, message }) => return Ok(xml_error(status, sts_error_body(code, message))),
        Some(Fault::Throttle) => return Ok(throttle()),
        Some(Fault::JsonError { status, code }) => return Ok(json_error(status, code)),
        Some(Fault::Stall) if !decided => hold(&shared).await,
        Some(Fault::Swallow(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT);
            let answer = Response::builder().status(status).header("x-amz-request-id", "FAULTPROXY");
            return Ok(answer.body(ProxyBody::Full(Full::new(Bytes::new()))).expect("static response"));
        }
        Some(Fault::Reset) if !body.is_empty() => return Err("faultproxy: connection cut after the request body".into()),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::CorruptBody { drop_header }) if !body.is_empty() => {
            let mid = body.len() / 2;
            body[mid] ^= 0x5a;
            if let Some(name) = drop_header {
                parts.headers.remove(name);
            }
        }
        Some(Fault::DropHeader(name)) => {
            parts.headers.remove(name);
        }
        _ => {}
    }

    let op = classify::operation(&parts.method, &parts.uri, &parts.headers, &body);
    let path = parts.uri.path().to_string();
    if op == "PutObject" {
        use base64::Engine;
        use sha2::Digest;
        let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
        shared.stored.lock().unwrap().insert(path.clone(), sha);
    }
    strip_hop_by_hop(&mut parts.headers);
    if !body.is_empty() || declared.is_some() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let upstream_req = Request::from_parts(parts, Full::new(Bytes::from(body)));
    let (mut resp_parts, resp_body) = forward(shared.upstream, upstream_req).await?.into_parts();
    strip_hop_by_hop(&mut resp_parts.headers);
    if matches!(op.as_str(), "HeadObject" | "GetObject") && shared.true_checksums.load(Ordering::SeqCst) {
        correct_checksum(&shared, &path, &mut resp_parts.headers);
    }
    let bytes = resp_body.collect().await?.to_bytes();
    *shared.stats.lock().unwrap().answered.entry(op.clone()).or_default() += 1;

    if matches!(fault, Some(Fault::StallMidBody)) {
        let half = bytes.slice(..bytes.len() / 2);
        let rest = bytes.slice(bytes.len() / 2..);
        let released = held(&shared);
        return Ok(Response::from_parts(resp_parts, ProxyBody::Stalled(body::StalledBody::new(half, rest, released))));
    }
    if matches!(fault, Some(Fault::Reset | Fault::LoseResponse)) {
        // No request body to cut (or asked to): cut the response after half of it.
        let half = bytes.slice(..bytes.len() / 2);
        resp_parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len().max(1)));
        return Ok(Response::from_parts(resp_parts, ProxyBody::Cut(CutBody::new(half))));
    }
    Ok(Response::from_parts(resp_parts, ProxyBody::Full(Full::new(bytes))))
}

/// Waits until the next [`FaultProxy::release_stalls`].
async fn hold(shared: &Shared) {
    held(shared).await;
}

/// A future that ends at the next [`FaultProxy::release_stalls`] after now.
fn held(shared: &Shared) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    let mut rx = shared.releases.subscribe();
    let seen = *rx.borrow_and_update();
    Box::pin(async move {
        let _ = rx.wait_for(|n| *n > seen).await;
    })
}

fn correct_checksum(shared: &Shared, path: &str, headers: &mut HeaderMap) {
    let Some(actual) = shared.stored.lock().unwrap().get(path).cloned() else { return };
    let reported = headers.get("x-amz-checksum-sha256").and_then(|v| v.to_str().ok()).map(String::from);
    if reported.is_some_and(|r| r != actual) {
        headers.insert("x-amz-checksum-sha256", HeaderValue::from_str(&actual).expect("base64 is a valid header"));
        shared.count_fault("stored-checksum");
    }
}

/// STS and IAM name their operation in the form body; everything else in the
/// request line or headers.
fn op_needs_body(op: &str) -> bool {
    op == classify::FORM_POST
}

/// What names a request for the seeded draws: its operation, path and
/// query, without the upload id (the server's random name for an upload,
/// different in every run).
fn request_key(op: &str, uri: &hyper::Uri) -> String {
    let query: Vec<&str> = uri.query().unwrap_or("").split('&').filter(|kv| !kv.starts_with("uploadId=")).collect();
    format!("{op} {}?{}", uri.path(), query.join("&"))
}

fn decide(shared: &Shared, op: &str, key: &str) -> Option<Fault> {
    {
        let mut stats = shared.stats.lock().unwrap();
        stats.requests += 1;
        *stats.ops.entry(op.to_string()).or_default() += 1;
        stats.arrivals.entry(op.to_string()).or_default().push(Instant::now());
    }
    let fault = shared.decide(op, key);
    if let Some(f) = &fault {
        shared.count_fault(f.name());
    }
    fault
}

async fn forward(upstream: SocketAddr, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

fn s3_error_body(code: &str) -> String {
    let message = match code {
        "SlowDown" => "Please reduce your request rate.",
        "InternalError" => "We encountered an internal error. Please try again.",
        _ => "Injected by faultproxy.",
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>"
    )
}

fn sts_error_body(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>FAULTPROXY</RequestId></ErrorResponse>"
    )
}

fn xml_error(status: u16, body: String) -> Response<ProxyBody> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/xml")
        .header("x-amz-request-id", "FAULTPROXY")
        .body(ProxyBody::Full(Full::new(Bytes::from(body))))
        .expect("static response")
}

fn json_error(status: u16, code: &str) -> Response<ProxyBody> {
    let body = format!(r#"{{"__type":"{code}","message":"Injected by faultproxy."}}"#);
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", code)
        .header("x-amzn-requestid", "FAULTPROXY")
        .body(ProxyBody::Full(Full::new(Bytes::from(body))))
        .expect("static response")
}

fn throttle() -> Response<ProxyBody> {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", "ThrottlingException")
        .header("x-amzn-requestid", "FAULTPROXY")
        .body(ProxyBody::Full(Full::new(Bytes::from_static(br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#))))
        .expect("static response")
}
