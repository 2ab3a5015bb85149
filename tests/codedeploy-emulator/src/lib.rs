//! A local emulator of AWS CodeDeploy (EC2/on-premises, in-place deployments)
//! speaking the service's JSON 1.1 protocol, for ferry's tests.
//!
//! It is a test tool: deployments really advance in the background over
//! simulated instances, bundles are really fetched from an S3 endpoint and
//! hook scripts really run, but nothing is secured and nothing persists.

pub mod bundle;
pub mod engine;
pub mod hooks;
pub mod model;
pub mod ops;
pub mod protocol;
pub mod store;
pub mod throttle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::protocol::ApiError;
use crate::store::Shared;

/// How an emulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// S3 endpoint bundles are fetched from (path-style addressing), e.g. moto
    /// at `http://127.0.0.1:PORT`. `None` means the region's real S3 endpoint.
    pub s3_endpoint: Option<String>,
    /// Access key id and secret used to fetch bundles (the instances' profile);
    /// `None` uses the default credential chain.
    pub s3_credentials: Option<(String, String)>,
    /// Region reported in ARNs and used for S3.
    pub region: String,
    /// How long each lifecycle event takes (zero allowed).
    pub step_delay: Duration,
    /// Instances per deployment group unless its `emulator:instances` tag says otherwise.
    pub default_instances: usize,
    /// Where instance directories live; `None` = a temporary directory owned by the emulator.
    pub work_dir: Option<PathBuf>,
    /// Request-rate limits in requests per second by operation name (`*` for
    /// every operation); requests over the limit get a `ThrottlingException`.
    pub rate_limits: BTreeMap<String, f64>,
    /// Page size of the List* operations.
    pub page_size: usize,
    /// Account id shown in instance ARNs.
    pub account_id: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            s3_endpoint: None,
            s3_credentials: None,
            region: "us-east-1".to_string(),
            step_delay: Duration::from_millis(200),
            default_instances: 1,
            work_dir: None,
            rate_limits: BTreeMap::new(),
            page_size: 100,
            account_id: "123456789012".to_string(),
        }
    }
}

/// A running emulator on its own thread and runtime; dropping it shuts it down.
pub struct Emulator {
    addr: std::net::SocketAddr,
    work_dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    // Held so a temporary work dir lives as long as the emulator.
    _temp: Option<tempfile::TempDir>,
}

impl Emulator {
    /// Binds `127.0.0.1:0` and serves on a dedicated thread with its own tokio
    /// runtime; returns once the socket is listening. Works from sync tests and
    /// from inside another tokio runtime alike.
    pub fn start(config: Config) -> std::io::Result<Emulator> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (temp, work_dir) = resolve_work_dir(&config)?;
        let shared = Shared::new(config, work_dir.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("codedeploy-emulator")
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("codedeploy-emulator".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("codedeploy-emulator: cannot adopt listener: {e}");
                        return;
                    }
                };
                let shutdown = async move {
                    let _ = rx.await;
                };
                if let Err(e) = axum::serve(listener, router(shared)).with_graceful_shutdown(shutdown).await {
                    eprintln!("codedeploy-emulator: server error: {e}");
                }
            });
            // Background deployments and their hook processes die with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
        Ok(Emulator { addr, work_dir, shutdown: Some(tx), thread: Some(thread), _temp: temp })
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where instance directories live.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves the emulator on `listener` until the future is dropped or the
/// listener fails. Used by the binary.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    let (_temp, work_dir) = resolve_work_dir(&config)?;
    let shared = Shared::new(config, work_dir);
    axum::serve(listener, router(shared)).await
}

fn resolve_work_dir(config: &Config) -> std::io::Result<(Option<tempfile::TempDir>, PathBuf)> {
    match &config.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Ok((None, dir.clone()))
        }
        None => {
            let temp = tempfile::Builder::new().prefix("codedeploy-emulator-").tempdir()?;
            let path = temp.path().to_path_buf();
            Ok((Some(temp), path))
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/", post(handle)).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let operation = match protocol::operation_of(&headers) {
        Ok(op) => op,
        Err(e) => return e.into_response(),
    };
    if !shared.throttle.admit(&operation) {
        return ApiError::new("ThrottlingException", "Rate exceeded").into_response();
    }
    let result = protocol::parse_body(&body).and_then(|input| ops::dispatch(&shared, &operation, input));
    match result {
        Ok(value) => protocol::ok_response(value),
        Err(e) => {
            eprintln!("codedeploy-emulator: {operation}: {}: {}", e.code, e.message);
            e.into_response()
        }
    }
}
