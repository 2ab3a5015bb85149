//! CodeDeploy's command service, the API the real CodeDeploy agent polls
//! (JSON 1.1, target prefix `CodeDeployCommandService_v20141006`; the model
//! is the agent's `vendor/gems/codedeploy-commands-1.0.0/apis/CodeDeployCommand.api.json`).
//!
//! For an instance registered as on-premises, the engine hands each
//! lifecycle event to [`run_event`]: it queues a host command for the
//! instance's host identifier (its IAM user ARN), the agent picks it up with
//! `PollHostCommand` (held open up to [`POLL_WAIT`] when nothing is queued),
//! fetches the signed deployment specification, acknowledges, runs the event
//! and reports `PutHostCommandComplete`, whose diagnostics become the event's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::Diagnostics;
use crate::protocol::ApiError;
use crate::store::Shared;

/// The `X-Amz-Target` prefix of the command service's operations.
pub const TARGET_PREFIX: &str = "CodeDeployCommandService_v20141006.";

/// How long a `PollHostCommand` with nothing to hand out is held open. The
/// agent polls again right away (after `:wait_between_runs`), so this only
/// bounds how long a shutdown may wait for an open poll.
pub const POLL_WAIT: Duration = Duration::from_secs(2);

/// How long a queued command may wait for its agent to report before the
/// event fails: the agent is dead or was never started.
pub const AGENT_DEADLINE: Duration = Duration::from_secs(600);

/// The deployment system the agent insists on (`CommandExecutor#deployment_system`).
const DEPLOYMENT_SYSTEM: &str = "CodeDeploy";

/// What an agent reported for one command.
#[derive(Debug, Clone)]
pub struct Completion {
    /// `Succeeded` or `Failed`.
    pub status: String,
    /// The decoded diagnostics payload, if the agent sent JSON.
    pub diagnostics: Option<Value>,
}

struct Command {
    host: String,
    execution_id: String,
    name: String,
    done: Option<tokio::sync::oneshot::Sender<Completion>>,
}

#[derive(Default)]
struct Queue {
    /// Command ids not yet handed out, per host identifier.
    waiting: BTreeMap<String, VecDeque<String>>,
    /// Every command not completed yet, by host command identifier.
    commands: BTreeMap<String, Command>,
    /// Signed deployment specifications, by deployment execution id.
    specs: BTreeMap<String, String>,
    /// Host identifiers that have polled at least once.
    polled: std::collections::BTreeSet<String>,
}

/// The command service's state: queued host commands and signed specs.
#[derive(Default)]
pub struct CommandService {
    queue: Mutex<Queue>,
    queued: tokio::sync::Notify,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandService")
    }
}

impl CommandService {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an agent with this host identifier has polled yet.
    pub fn has_polled(&self, host: &str) -> bool {
        self.lock().polled.contains(host)
    }

    fn take_for(&self, host: &str) -> Option<(String, Value)> {
        let mut q = self.lock();
        q.polled.insert(host.to_string());
        let id = q.waiting.get_mut(host)?.pop_front()?;
        let c = q.commands.get(&id)?;
        Some((
            id.clone(),
            json!({
                "HostCommandIdentifier": id,
                "HostIdentifier": c.host,
                "DeploymentExecutionId": c.execution_id,
                "CommandName": c.name,
                "Nonce": 0,
            }),
        ))
    }
}

/// The deployment specification the agent is given, before signing: the
/// fields `DeploymentSpecification#initialize` reads. No
/// `AllPossibleLifecycleEvents`: the v1.8.1 agent crashes on it.
pub struct SpecFields<'a> {
    /// Deployment id.
    pub deployment_id: &'a str,
    /// Group id.
    pub group_id: &'a str,
    /// Group name.
    pub group_name: &'a str,
    /// Application name.
    pub application_name: &'a str,
    /// `user`, `autoscaling` or `codeDeployRollback`.
    pub creator: &'a str,
    /// The deployment's `fileExistsBehavior`.
    pub file_exists_behavior: &'a str,
    /// The S3 revision.
    pub s3: &'a crate::model::S3Location,
}

/// The specification as JSON text.
pub fn spec_json(f: &SpecFields<'_>) -> String {
    let mut s3 = json!({
        "Bucket": f.s3.bucket,
        "Key": f.s3.key,
        // The agent requires a bundle type; the service fills it in.
        "BundleType": f.s3.bundle_type.clone().unwrap_or_else(|| "zip".into()),
    });
    if let Some(v) = &f.s3.version {
        s3["Version"] = json!(v);
    }
    if let Some(e) = &f.s3.e_tag {
        s3["ETag"] = json!(e);
    }
    json!({
        "DeploymentId": f.deployment_id,
        "DeploymentGroupId": f.group_id,
        "DeploymentGroupName": f.group_name,
        "ApplicationName": f.application_name,
        "DeploymentCreator": f.creator,
        "DeploymentType": "IN_PLACE",
        "AgentActionOverrides": { "AgentOverrides": { "FileExistsBehavior": f.file_exists_behavior } },
        "Revision": { "RevisionType": "S3", "S3Revision": s3 },
    })
    .to_string()
}

/// Runs lifecycle event `event` of an on-premises instance through its
/// agent: queues the command and waits for the agent's report.
pub async fn run_event(
    shared: &Arc<Shared>,
    host: &str,
    execution_id: &str,
    signed_spec: &str,
    event: &str,
) -> Result<Diagnostics, Diagnostics> {
    let service = &shared.commands;
    let id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let mut q = service.lock();
        q.specs.insert(execution_id.to_string(), signed_spec.to_string());
        q.commands.insert(
            id.clone(),
            Command { host: host.to_string(), execution_id: execution_id.to_string(), name: event.to_string(), done: Some(tx) },
        );
        q.waiting.entry(host.to_string()).or_default().push_back(id.clone());
    }
    service.queued.notify_waiters();
    let completion = match tokio::time::timeout(AGENT_DEADLINE, rx).await {
        Ok(Ok(c)) => c,
        _ => {
            let mut q = service.lock();
            q.commands.remove(&id);
            if let Some(w) = q.waiting.get_mut(host) {
                w.retain(|c| c != &id);
            }
            return Err(crate::engine::unknown_error(format!(
                "The CodeDeploy agent of host {host} did not report {event} within {} seconds.",
                AGENT_DEADLINE.as_secs()
            )));
        }
    };
    diagnostics_of(&completion)
}

/// The agent's error codes (`ScriptError` in `hook_executor.rb`) as the
/// service names them. The service's `LifecycleErrorCode` has no name for
/// OutputsLeftOpen (6) or FailedAfterRestart (7); the emulator shows them as
/// ScriptFailed and UnknownError.
pub fn error_code_name(code: i64) -> &'static str {
    match code {
        0 => "Success",
        1 => "ScriptMissing",
        2 => "ScriptNotExecutable",
        3 => "ScriptTimedOut",
        4 | 6 => "ScriptFailed",
        _ => "UnknownError",
    }
}

/// The event's result and diagnostics from what the agent reported: a
/// failure's errorCode, scriptName, message and logTail are the agent's.
pub fn diagnostics_of(c: &Completion) -> Result<Diagnostics, Diagnostics> {
    let d = c.diagnostics.clone().unwrap_or(Value::Null);
    let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let diagnostics = Diagnostics {
        error_code: error_code_name(d.get("error_code").and_then(Value::as_i64).unwrap_or(5)).to_string(),
        script_name: text("script_name"),
        message: text("message"),
        log_tail: text("log"),
    };
    // A succeeded event shows as the service shows it, whatever the agent's
    // success payload ("Succeeded: ") said: AWS's own examples print
    // `message: Succeeded` with an empty script name and log.
    if c.status == "Succeeded" { Ok(crate::engine::success()) } else { Err(diagnostics) }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Format")]
    format: Option<String>,
    #[serde(rename = "Payload")]
    payload: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    host_identifier: Option<String>,
    host_command_identifier: Option<String>,
    deployment_execution_id: Option<String>,
    command_status: Option<String>,
    diagnostics: Option<Envelope>,
}

/// Answers one command-service request (already known to carry its target
/// prefix). Signatures are not verified, as on the main API.
pub async fn answer(shared: &Arc<Shared>, headers: &HeaderMap, body: &Bytes) -> (String, Result<Value, ApiError>) {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_string();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 ") {
        return (op, Err(ApiError::new("MissingAuthenticationTokenException", "Missing Authentication Token")));
    }
    let input = match crate::protocol::parse_body(body).and_then(crate::protocol::input::<Input>) {
        Ok(i) => i,
        Err(e) => return (op, Err(e)),
    };
    let result = match op.as_str() {
        "PollHostCommand" => poll(shared, input).await,
        "GetDeploymentSpecification" => specification(shared, input),
        "PutHostCommandAcknowledgement" => acknowledge(shared, input),
        "PutHostCommandComplete" => complete(shared, input),
        "PostHostCommandUpdate" => Ok(json!({ "CommandStatus": "InProgress" })),
        _ => Err(ApiError::new("UnknownOperationException", format!("Unknown operation target '{target}'"))),
    };
    (op, result)
}

fn client_error(message: String) -> ApiError {
    ApiError::new("ClientException", message)
}

async fn poll(shared: &Arc<Shared>, input: Input) -> Result<Value, ApiError> {
    let host = input.host_identifier.ok_or_else(|| client_error("HostIdentifier is required".into()))?;
    let service = &shared.commands;
    let deadline = tokio::time::Instant::now() + POLL_WAIT;
    loop {
        // Registered before looking, so a command queued in between still wakes us.
        let notified = service.queued.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some((_, command)) = service.take_for(&host) {
            return Ok(json!({ "HostCommand": command }));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(json!({}));
        }
    }
}

fn specification(shared: &Arc<Shared>, input: Input) -> Result<Value, ApiError> {
    let id = input.deployment_execution_id.ok_or_else(|| client_error("DeploymentExecutionId is required".into()))?;
    let q = shared.commands.lock();
    let signed = q.specs.get(&id).ok_or_else(|| client_error(format!("No deployment execution {id}")))?;
    Ok(json!({
        "DeploymentSystem": DEPLOYMENT_SYSTEM,
        "DeploymentSpecification": { "GenericEnvelope": { "Format": "PKCS7/JSON", "Payload": signed } },
    }))
}

fn acknowledge(shared: &Arc<Shared>, input: Input) -> Result<Value, ApiError> {
    let id = input.host_command_identifier.ok_or_else(|| client_error("HostCommandIdentifier is required".into()))?;
    let q = shared.commands.lock();
    match q.commands.get(&id) {
        Some(_) => Ok(json!({ "CommandStatus": "InProgress" })),
        // Completed, or abandoned by the engine: tell the agent not to run it.
        None => Ok(json!({ "CommandStatus": "Failed" })),
    }
}

fn complete(shared: &Arc<Shared>, input: Input) -> Result<Value, ApiError> {
    let id = input.host_command_identifier.ok_or_else(|| client_error("HostCommandIdentifier is required".into()))?;
    let status = input.command_status.ok_or_else(|| client_error("CommandStatus is required".into()))?;
    let diagnostics = input.diagnostics.and_then(|e| {
        let payload = e.payload?;
        if e.format.as_deref() == Some("JSON") { serde_json::from_str(&payload).ok() } else { None }
    });
    let command = shared.commands.lock().commands.remove(&id);
    if let Some(mut c) = command
        && let Some(done) = c.done.take()
    {
        let _ = done.send(Completion { status, diagnostics });
    }
    Ok(json!({}))
}
