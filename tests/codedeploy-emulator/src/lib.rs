//! A local emulator of AWS CodeDeploy (EC2/on-premises in-place and blue/green, and Lambda deployments)
//! speaking the service's JSON 1.1 protocol, for ferry's tests.
//!
//! It is a test tool: deployments really advance in the background over
//! simulated instances, bundles are really fetched from an S3 endpoint and
//! hook scripts really run, but nothing is secured and nothing persists.

pub mod bundle;
pub mod commands;
pub mod ecs;
pub mod engine;
pub mod hooks;
pub mod iam;
pub mod lambda;
pub mod model;
pub mod ops;
pub mod pki;
pub mod protocol;
pub mod service_model;
pub mod store;
pub mod throttle;
mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
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
    /// Access key id and secret used to fetch bundles (the instances' profile)
    /// and to move Lambda aliases; `None` uses the default credential chain.
    pub s3_credentials: Option<(String, String)>,
    /// Lambda endpoint (moto) where Lambda deployments move an alias's
    /// traffic; `None` means the region's real Lambda endpoint.
    pub lambda_endpoint: Option<String>,
    /// ECS endpoint (moto) where ECS deployments create and remove task
    /// sets; `None` means the region's real ECS endpoint.
    pub ecs_endpoint: Option<String>,
    /// Region reported in ARNs and used for S3.
    pub region: String,
    /// How long each lifecycle event takes (zero allowed).
    pub step_delay: Duration,
    /// How long one minute of a blue/green group's wait times lasts
    /// (`waitTimeInMinutes`, `terminationWaitTimeInMinutes`): tests shrink it.
    pub minute: Duration,
    /// Instances per deployment group unless its `emulator:instances` tag says otherwise.
    pub default_instances: usize,
    /// Where instance directories live; `None` = a temporary directory owned by the emulator.
    pub work_dir: Option<PathBuf>,
    /// Request-rate limits in requests per second by operation name (`*` for
    /// every operation); requests over the limit get a `ThrottlingException`.
    pub rate_limits: BTreeMap<String, f64>,
    /// Page size of the List* operations.
    pub page_size: usize,
    /// Account id shown in instance and resource ARNs.
    pub account_id: String,
    /// CodeDeploy's service model (botocore's `service-2.json[.gz]`, see
    /// [`service_model::botocore_model_in`]). When set, every answer is
    /// checked against it and [`Emulator`] panics on drop if one did not fit.
    pub service_model: Option<PathBuf>,
    /// An identity policy to enforce on callers, as IAM would ([`iam`]).
    /// `None` lets every signed request through.
    pub identity_policy: Option<iam::IdentityPolicy>,
    /// When set, the emulator also serves https with this PKI's server
    /// certificate ([`Emulator::command_endpoint`]), for real CodeDeploy
    /// agents, and signs their deployment specifications with its CA key.
    pub agent_pki: Option<pki::Pki>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            s3_endpoint: None,
            s3_credentials: None,
            lambda_endpoint: None,
            ecs_endpoint: None,
            region: "us-east-1".to_string(),
            step_delay: Duration::from_millis(200),
            minute: Duration::from_secs(60),
            default_instances: 1,
            work_dir: None,
            rate_limits: BTreeMap::new(),
            page_size: 100,
            account_id: "123456789012".to_string(),
            service_model: None,
            identity_policy: None,
            agent_pki: None,
        }
    }
}

/// A hook function invocation of a Lambda deployment that waits for its
/// status: what the function would have been called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInvocation {
    /// `DeploymentId` of the invocation.
    pub deployment_id: String,
    /// `LifecycleEventHookExecutionId` of the invocation.
    pub execution_id: String,
    /// BeforeAllowTraffic or AfterAllowTraffic.
    pub lifecycle_event: String,
    /// The hook function.
    pub function: String,
}

/// A running emulator on its own thread and runtime; dropping it shuts it down.
pub struct Emulator {
    addr: std::net::SocketAddr,
    tls_addr: Option<std::net::SocketAddr>,
    shared: Arc<Shared>,
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
        let model = load_model(&config)?;
        let tls = match &config.agent_pki {
            Some(pki) => {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                Some((tls::acceptor(pki)?, l))
            }
            None => None,
        };
        let tls_addr = tls.as_ref().map(|(_, l)| l.local_addr()).transpose()?;
        let shared = Shared::new(config, work_dir.clone(), model);
        let router = router(shared.clone());
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
                let (stop_tls, tls_stopped) = tokio::sync::watch::channel(());
                if let Some((acceptor, l)) = tls {
                    match tokio::net::TcpListener::from_std(l) {
                        Ok(l) => {
                            let mut stopped = tls_stopped.clone();
                            let serve = axum::serve(tls::TlsListener::new(l, acceptor), router.clone()).with_graceful_shutdown(
                                async move {
                                    let _ = stopped.changed().await;
                                },
                            );
                            tokio::spawn(async move {
                                if let Err(e) = serve.await {
                                    eprintln!("codedeploy-emulator: https server error: {e}");
                                }
                            });
                        }
                        Err(e) => eprintln!("codedeploy-emulator: cannot adopt the https listener: {e}"),
                    }
                }
                let shutdown = async move {
                    let _ = rx.await;
                    let _ = stop_tls.send(());
                };
                if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                    eprintln!("codedeploy-emulator: server error: {e}");
                }
                drop(tls_stopped);
            });
            // Background deployments and their hook processes die with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
        Ok(Emulator { addr, tls_addr, shared, work_dir, shutdown: Some(tx), thread: Some(thread), _temp: temp })
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The https endpoint of the command service for real CodeDeploy
    /// agents, `https://127.0.0.1:PORT`, when [`Config::agent_pki`] is set.
    /// (It serves the main API too.)
    pub fn command_endpoint(&self) -> Option<String> {
        self.tls_addr.map(|a| format!("https://{a}"))
    }

    /// Whether the real agent with this host identifier (the IAM ARN of
    /// an on-premises instance) has polled the command service yet.
    pub fn agent_has_polled(&self, host_identifier: &str) -> bool {
        self.shared.commands.has_polled(host_identifier)
    }

    /// The hook functions of Lambda and ECS deployments that wait for
    /// PutLifecycleEventHookExecutionStatus: a test plays the function (moto
    /// cannot run it) and reports its status with these ids.
    pub fn hook_executions(&self) -> Vec<HookInvocation> {
        let store = self.shared.lock();
        store
            .deployments
            .values()
            .flat_map(|d| {
                d.hook_executions.iter().filter(|(_, e)| e.status.is_none()).map(|(id, e)| HookInvocation {
                    deployment_id: d.id.clone(),
                    execution_id: id.clone(),
                    lifecycle_event: e.event.clone(),
                    function: e.function.clone(),
                })
            })
            .collect()
    }

    /// Where instance directories live.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// How many successes and errors each operation has answered so far.
    pub fn answered_operations(&self) -> BTreeMap<String, (u64, u64)> {
        self.shared.answered()
    }

    /// The answers so far that did not fit the configured service model,
    /// each as `Operation: where: what`.
    pub fn model_violations(&self) -> Vec<String> {
        self.shared.violations()
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
        let violations = self.shared.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "codedeploy-emulator: {} answer(s) did not fit the CodeDeploy service model ({}):\n{}",
                violations.len(),
                self.shared.model.as_ref().map(|m| m.source.as_str()).unwrap_or("?"),
                violations.join("\n")
            );
        }
    }
}

/// Serves the emulator on `listener` until the future is dropped or the
/// listener fails. Used by the binary.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    let (_temp, work_dir) = resolve_work_dir(&config)?;
    let model = load_model(&config)?;
    let shared = Shared::new(config, work_dir, model);
    axum::serve(listener, router(shared)).await
}

fn load_model(config: &Config) -> std::io::Result<Option<Arc<service_model::ServiceModel>>> {
    config
        .service_model
        .as_deref()
        .map(service_model::ServiceModel::load)
        .transpose()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
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
    // Any other path or method gets the same treatment (and so a request id
    // and a JSON error), not the router's bare 404/405.
    Router::new().route("/", post(handle)).fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    // Every answer, errors too, carries a request id as AWS's do.
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let agent_api = target.starts_with(commands::TARGET_PREFIX);
    let (operation, result) = if agent_api {
        // The agent's own API: not CodeDeploy's model, not the deployer's IAM.
        let (op, result) = commands::answer(&shared, &headers, &body).await;
        (Some(op), result)
    } else {
        answer(&shared, &headers, &body)
    };
    let op = operation.as_deref();
    shared.count_answer(op.unwrap_or("(none)"), result.is_ok());
    let mut response = match result {
        Ok(mut value) => {
            protocol::strip_nulls(&mut value);
            if !agent_api {
                check_model(&shared, op, Ok(&value));
            }
            protocol::ok_response(value)
        }
        Err(e) => {
            eprintln!("codedeploy-emulator: {} ({request_id}): {}: {}", op.unwrap_or("?"), e.code, e.message);
            if !agent_api {
                check_model(&shared, op, Err((e.code, &e.body())));
            }
            e.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(protocol::REQUEST_ID_HEADER, value);
    }
    response
}

/// The operation a request names (if it names one) and the answer to it.
fn answer(shared: &Arc<Shared>, headers: &HeaderMap, body: &Bytes) -> (Option<String>, Result<serde_json::Value, ApiError>) {
    let operation = match protocol::operation_of(headers) {
        Ok(op) => op,
        Err(e) => return (None, Err(e)),
    };
    if !shared.throttle.admit(&operation) {
        return (Some(operation), Err(ApiError::new("ThrottlingException", "Rate exceeded")));
    }
    let result = protocol::parse_body(body).and_then(|input| {
        iam::authorize(shared, headers, &operation, &input)?;
        ops::dispatch(shared, &operation, input)
    });
    (Some(operation), result)
}

fn check_model(shared: &Shared, operation: Option<&str>, answer: Result<&serde_json::Value, (&str, &serde_json::Value)>) {
    let Some(model) = &shared.model else { return };
    let found = model.check_answer(operation, answer);
    if !found.is_empty() {
        let op = operation.unwrap_or("(no operation)");
        let found: Vec<String> = found.into_iter().map(|v| format!("{op}: {v}")).collect();
        for v in &found {
            eprintln!("codedeploy-emulator: answer does not fit the service model: {v}");
        }
        shared.record_violations(found);
    }
}
