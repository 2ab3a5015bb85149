//! report: the only code that prints. The pipeline emits [`Event`]s; a
//! [`Reporter`] renders them for a terminal, a Jenkins log, or a machine.

pub mod debug;
mod hooks;
mod json;
pub mod junit;
mod plain;
mod plan;
mod product;
mod tty;

use std::io::IsTerminal;

use crate::agent_log;
use crate::event::{Event, FailedInstance, HistoryEntry, Outcome, Overview, Receipt, Reporter};
use crate::jenkins::BuildEnv;

pub use json::JsonReporter;
pub use plain::PlainReporter;
pub use product::write_product;
pub use tty::TtyReporter;

/// `--output`: what stdout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Human lines on stderr; the result (deployment id) on stdout.
    Text,
    /// One JSON object per event on stdout.
    Json,
}

/// `--progress`: how human lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Bars on a terminal, plain lines in CI.
    Auto,
    /// Progress bars.
    Tty,
    /// Timestamped lines, no ANSI.
    Plain,
}

/// Picks the renderer. Jenkins (CI or JENKINS_URL set) and pipes get plain
/// lines: a Jenkins log shows carriage returns and ANSI codes as garbage.
/// `stdout_taken`: the command's product (credentials, a bundle) owns
/// stdout, so even JSON events go to stderr and nothing else is mixed in.
pub fn choose(output: OutputFormat, progress: Progress, stdout_taken: bool) -> Box<dyn Reporter> {
    if output == OutputFormat::Json {
        return Box::new(if stdout_taken { JsonReporter::stderr() } else { JsonReporter::stdout() });
    }
    let in_ci = BuildEnv::current().in_ci();
    let tty = match progress {
        Progress::Tty => true,
        Progress::Plain => false,
        Progress::Auto => std::io::stderr().is_terminal() && !in_ci,
    };
    if tty { Box::new(TtyReporter::new()) } else { Box::new(PlainReporter::stderr()) }
}

/// How an event reads for a person, in one place: its sentence
/// ([`describe`]), its [`Tone`] and the lines it puts on stdout as the
/// command's result ([`result_lines`]). The plain and TTY renderers only
/// lay these out; the JSON renderer writes the event as it is. A new event
/// is an arm in `describe_raw`, and one here if it is coloured or a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Ordinary progress.
    Plain,
    /// A deployment succeeded.
    Good,
    /// Something to look at that did not stop ferry.
    Warning,
    /// A failure: an error, a failed hook or check.
    Bad,
    /// A deployment's unhappy end.
    Loud,
}

impl Tone {
    /// The tone of `event`.
    pub(crate) fn of(event: &Event) -> Tone {
        match event {
            Event::Error { .. } | Event::LifecycleFailed { .. } | Event::Check { ok: false, .. } => Tone::Bad,
            Event::Warning { .. } => Tone::Warning,
            Event::Finished { outcome: Outcome::Succeeded, .. } => Tone::Good,
            Event::Finished { .. } | Event::Verdict { .. } => Tone::Loud,
            _ => Tone::Plain,
        }
    }

    /// The ANSI SGR parameters a terminal shows it in; `None`: as it is.
    pub(crate) fn sgr(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("32"),
            Tone::Warning => Some("33"),
            Tone::Bad => Some("31"),
            Tone::Loud => Some("31;1"),
        }
    }
}

/// What text mode prints on stdout for an event that is a command's result
/// (of environment `env` in a wave), sanitised; `None` for the others: the
/// deployment id, a wave's `ENV<TAB>DEPLOYMENT` lines, a bundle's SHA-256,
/// an uploaded bundle's URI, a `ferry history` row.
pub(crate) fn result_lines(event: &Event, env: Option<&str>) -> Option<Vec<String>> {
    let lines = match event {
        Event::Receipt(r) => vec![receipt_line(r)],
        Event::WaveReceipt(r) => wave_receipt_lines(r),
        Event::BundleWritten { sha256, .. } => vec![sha256.clone()],
        Event::Staged { uri, .. } => vec![uri.clone()],
        Event::Plan(p) => plan::lines(p),
        Event::HistoryEntry(h) => {
            let env_column = env.map(|e| format!("{e}\t")).unwrap_or_default();
            vec![format!("{env_column}{}", history_line(h))]
        }
        Event::StatusRead { status, .. } => vec![status.clone()],
        _ => return None,
    };
    Some(lines.iter().map(|l| plain::sanitize(l)).collect())
}

/// The human sentence for an event, shared by the plain and TTY renderers.
/// `None` for events that only drive progress bars or go to stdout.
///
/// Every value from outside (a job name, a deployment's description, a
/// hook's output, an AWS message) has its line breaks and other control
/// characters escaped, so none can start a line of its own: a newline in
/// `JOB_NAME` must not forge `… deployment d-FAKE succeeded` in a log. Only
/// the renderings built of several lines keep their own line breaks, and
/// each of their values is escaped alone.
pub fn describe(event: &Event) -> Option<String> {
    let text = describe_raw(event)?;
    Some(match event {
        Event::LifecycleFailed { .. } | Event::Finished { .. } | Event::Check { .. } => text,
        // An error may quote a file with its own layout (a TOML error's
        // line and caret): kept, but every line after the first indented,
        // so no quoted line can pass for one of ferry's.
        Event::Error { .. } => text
            .split('\n')
            .enumerate()
            .map(|(i, l)| if i == 0 { one_line(l).into_owned() } else { format!("  {}", one_line(l)) })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => one_line(&text).into_owned(),
    })
}

/// `s` with line breaks and other control characters written as escapes
/// (`\n`, `\r`, `\u{7}`), except tabs and ESC (whose sequences the
/// renderers strip whole). Nothing in the result can start a new line.
pub fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    let keep = |c: char| !c.is_control() || c == '\t' || c == '\u{1b}';
    if s.chars().all(keep) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if keep(c) => out.push(c),
            c => out.push_str(&c.escape_unicode().to_string()),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn describe_raw(event: &Event) -> Option<String> {
    Some(match event {
        Event::Assumed { role_arn, session_name, assumed_arn } => {
            format!("assumed {role_arn} as session {session_name} ({assumed_arn})")
        }
        Event::BundleReady { path, bundle_type, size, sha256, cached: true, built: false } => format!(
            "using {} bundle {path} ({}, sha256 {}, known from when ferry last read or wrote it; unchanged, by its CRC-64/NVME)",
            bundle_type.extension(),
            human_bytes(*size),
            short(sha256, 12)
        ),
        Event::BundleReady { path, bundle_type, size, sha256, cached: true, .. } => format!(
            "reused the cached {} bundle of {path}: nothing in it changed ({}, sha256 {})",
            bundle_type.extension(),
            human_bytes(*size),
            short(sha256, 12)
        ),
        Event::BundleReady { path, bundle_type, size, sha256, built, .. } => {
            let what = if *built { "built" } else { "using" };
            format!("{what} {} bundle {path} ({}, sha256 {})", bundle_type.extension(), human_bytes(*size), short(sha256, 12))
        }
        Event::UploadStarted { bucket, key, size } => format!("uploading {} to s3://{bucket}/{key}", human_bytes(*size)),
        Event::UploadProgress { .. } => return None,
        Event::Uploaded { bucket, key, etag, version_id, .. } => match version_id {
            Some(v) => format!("uploaded s3://{bucket}/{key} (etag {etag}, version {v})"),
            None => format!("uploaded s3://{bucket}/{key} (etag {etag})"),
        },
        Event::FunctionPublished { function, version, alias_version, alias, code_sha256 } => format!(
            "published {function} version {version} (CodeSha256 {code_sha256}, as uploaded); alias {alias} is on version \
             {alias_version}"
        ),
        Event::TrafficShifted { function, alias, current_version, target_version, target_percent, .. } => format!(
            "  {function}:{alias} traffic: version {target_version} {}%, version {current_version} {}%",
            percent(*target_percent),
            percent(100.0 - target_percent)
        ),
        Event::ImageResolved { image, deploys, verified: true, .. } if image == deploys => {
            format!("image {image} is in ECR")
        }
        Event::ImageResolved { image, deploys, verified: true, .. } => {
            format!("image {image} resolved to {deploys} (ECR): the digest is what deploys")
        }
        Event::ImageResolved { deploys, .. } => {
            format!("image {deploys} deploys by its digest; it is not in ECR, so ferry could not check that it exists")
        }
        Event::TaskDefinitionRegistered { task_definition_arn, copied_from, container, image } => {
            format!("registered task definition {task_definition_arn} (from {copied_from}, container {container} on {image})")
        }
        Event::TaskSetTraffic { target_id, replacement, replacement_percent, original_percent, .. } => format!(
            "  {target_id} traffic: replacement task set {replacement} {}%, original {}%",
            percent(*replacement_percent),
            percent(*original_percent)
        ),
        Event::DeploymentCreated { deployment_id, application, deployment_group } => {
            format!("created deployment {deployment_id} of {application} to {deployment_group}")
        }
        Event::DeploymentStatus { deployment_id, status, overview } if overview.total() == 0 => {
            format!("deployment {deployment_id} {status}")
        }
        Event::DeploymentStatus { deployment_id, status, overview } => format!(
            "deployment {deployment_id} {status}: {} succeeded, {} in progress, {} pending, {} failed, {} skipped{}",
            overview.succeeded,
            overview.in_progress,
            overview.pending,
            overview.failed,
            overview.skipped,
            // Blue/green only: replacement instances waiting for traffic.
            if overview.ready > 0 { format!(", {} ready", overview.ready) } else { String::new() }
        ),
        Event::LifecycleFailed { target_id, lifecycle_event, error_code, script_name, message, log_tail, .. } => {
            lifecycle_failure(
                target_id,
                lifecycle_event,
                error_code.as_deref(),
                script_name.as_deref(),
                message.as_deref(),
                log_tail.as_deref(),
            )
        }
        Event::TargetEventChanged { target_id, lifecycle_event, status, duration_ms, .. } => match duration_ms {
            Some(ms) => format!("  {target_id} {lifecycle_event} {status} ({})", human_ms(*ms)),
            None => format!("  {target_id} {lifecycle_event} {status}"),
        },
        Event::TargetSkipped { target_id, .. } => format!("  {target_id} Skipped"),
        Event::TargetLabelled { target_id, label, .. } => {
            let role = if label == "Green" { "replacement" } else { "original" };
            format!("  {target_id} {label} ({role} environment)")
        }
        // The event lines already said it; only the live board and JSON use it.
        Event::TargetFinished { .. } => return None,
        Event::Finished { deployment_id, outcome, error, overview, failed_instances, elapsed_ms } => {
            finished(deployment_id, *outcome, error.as_deref(), overview, failed_instances, *elapsed_ms)
        }
        Event::Receipt(_) | Event::WaveReceipt(_) | Event::BundleWritten { .. } | Event::Staged { .. } => return None,
        Event::WaveStarted { wave, stages, sha256, rollback } => format!(
            "wave {wave}: {} stage(s) ({}), bundle sha256 {}, rollback policy {rollback}",
            stages.len(),
            stages.iter().map(|s| s.join(" + ")).collect::<Vec<_>>().join(" → "),
            short(sha256, 12)
        ),
        Event::StageStarted { stage, stages, envs } => format!("stage {stage}/{stages}: releasing to {}", envs.join(", ")),
        Event::StageDone { stage, envs } => format!("stage {stage} done: {} succeeded", envs.join(", ")),
        Event::BakeStarted { stage, duration_s, groups } => format!(
            "baking stage {stage} for {}: {} must have no new Failed or Stopped deployment",
            human_ms(duration_s * 1000),
            groups.join(", ")
        ),
        Event::BakeDone { stage } => format!("bake of stage {stage} passed"),
        Event::WaveHalted { stage, envs, reason, rollback } => {
            let what = if rollback.is_empty() {
                "rolling back nothing".to_string()
            } else {
                format!("rolling back {}", rollback.join(", "))
            };
            format!("WAVE HALTED in stage {stage} ({}): {reason}; later stages are not started; {what}", envs.join(", "))
        }
        Event::WaveFinished { wave, outcome, exit_code } => {
            let word = match outcome {
                crate::event::WaveOutcome::Succeeded => "succeeded",
                crate::event::WaveOutcome::Halted => "HALTED",
                crate::event::WaveOutcome::Aborted => "ABORTED",
            };
            format!("wave {wave} {word} (exit {exit_code})")
        }
        Event::AppSpecProblem { file, line, message } => match line {
            Some(line) => format!("{file}:{line}: {message}"),
            None => format!("{file}: {message}"),
        },
        Event::Checked { file, problems: 0 } => format!("{file}: no problems found"),
        Event::Checked { file, problems } => {
            format!("{file}: {problems} problem(s); nothing can be released until they are fixed")
        }
        Event::UploadResumed { upload_id, parts, bytes } => {
            format!("resuming multipart upload {upload_id}: {parts} part(s), {}, already in S3", human_bytes(*bytes))
        }
        Event::UploadResent { part, attempt, attempts, detail } => {
            let what = part.map_or("the bundle".to_string(), |n| format!("part {n}"));
            format!("S3 received {what} damaged ({detail}): re-sending it from the local file, send {attempt} of {attempts}")
        }
        Event::UploadSkipped { bucket, key } => {
            format!("s3://{bucket}/{key} already holds this bundle (SHA-256 checked); nothing uploaded")
        }
        Event::RollbackStarted { deployment_id, rollback_deployment_id } => {
            format!("CodeDeploy is rolling back {deployment_id} with deployment {rollback_deployment_id}; following it")
        }
        Event::RollbackSkipped { deployment_id, reason } => format!("no rollback of {deployment_id}: {reason}"),
        Event::Verdict { deployment_id, deployment_outcome, rollback_deployment_id, rollback_outcome, outcome, exit_code } => {
            let ended = if *deployment_outcome == Outcome::Stopped { "was STOPPED" } else { "FAILED" };
            let after = match outcome {
                Outcome::RolledBack => {
                    format!("the previous revision was restored by rollback {rollback_deployment_id}")
                }
                Outcome::TimedOut => {
                    format!("its rollback {rollback_deployment_id} had not ended when --timeout elapsed")
                }
                _ => format!(
                    "its rollback {rollback_deployment_id} ended {} too, so the group's instances may run either \
                     revision",
                    word(*rollback_outcome)
                ),
            };
            format!("deployment {deployment_id} {ended}; {after} (exit {exit_code})")
        }
        Event::RollbackPlanned { .. } => rollback_plan(event),
        Event::ContinueRequested { deployment_id, wait } => match wait.as_str() {
            "termination" => format!("CodeDeploy is continuing {deployment_id}: terminating the original instances now"),
            _ => format!("CodeDeploy is continuing {deployment_id}: rerouting traffic to the replacement instances"),
        },
        Event::StopRequested { deployment_id, rollback } => match rollback {
            Some(true) => format!("stopping deployment {deployment_id} and rolling it back"),
            Some(false) => format!("stopping deployment {deployment_id} without rollback"),
            None => format!("stopping deployment {deployment_id} (rollback as the group is configured)"),
        },
        Event::Aborting { signal, deployment_id, action } => {
            let what = match action.as_str() {
                "leave" => "leaving it running".to_string(),
                "stop" => "stopping it".to_string(),
                _ => "stopping it and rolling back".to_string(),
            };
            format!("{signal} received while following {deployment_id}: {what} (a second signal exits at once)")
        }
        Event::Interrupted { signal, phase, detail } => format!("{signal} received during {phase}: {detail}"),
        Event::UploadAborted { bucket, key, upload_ids, open: 0 } => format!(
            "aborted {} multipart upload(s) of s3://{bucket}/{key}; S3 lists none still open for that key",
            upload_ids.len()
        ),
        Event::UploadAborted { bucket, key, open, .. } => format!(
            "S3 still lists {open} open multipart upload(s) of s3://{bucket}/{key}; a bucket lifecycle rule \
             (AbortIncompleteMultipartUpload) removes them, or the next release of this bundle resumes one"
        ),
        Event::Aborted { signal, deployment_id, status, rollback_deployment_id, rollback_status } => {
            let mut s = format!("aborted by {signal}: deployment {deployment_id} is {status}");
            if let Some(r) = rollback_deployment_id {
                s.push_str(&format!(", rollback {r} is {}", rollback_status.as_deref().unwrap_or("Unknown")));
            }
            s
        }
        Event::Queued { deployment_id, creator, description, timeout_s } => format!(
            "deployment group busy with {deployment_id} (started by {}{}); waiting up to {}s for it to end",
            creator.as_deref().unwrap_or("unknown"),
            description.as_deref().map(|d| format!(": \"{d}\"")).unwrap_or_default(),
            timeout_s
        ),
        Event::Superseded { deployment_id, build, newer_build } => {
            format!("not deploying build {build}: deployment {deployment_id} carries the newer build {newer_build} of this job")
        }
        Event::DeploymentAdopted { deployment_id, reason } => format!("following deployment {deployment_id}: {reason}"),
        Event::HistoryEntry(_) | Event::StatusRead { .. } | Event::Plan(_) => return None,
        Event::ConfirmRequested { environment } => format!(
            "{environment} is marked confirm = true: type `{environment}` and Enter to release to it (anything else stops)"
        ),
        Event::ReceiptWritten { path } => format!("receipt written to {path}"),
        Event::Warning { message } => format!("warning: {}", crate::aws_error::request_ids_last(message)),
        Event::SessionPlanned { hops, duration_seconds, tags, source_identity, session_policy } => {
            session_plan(hops, *duration_seconds, tags, source_identity.as_deref(), *session_policy)
        }
        Event::Check { name, ok: true, detail, .. } => format!("✓ {}: {}", one_line(name), one_line(detail)),
        Event::Check { name, ok: false, detail, fix } => match fix {
            Some(fix) => format!("✗ {}: {}\n    fix: {}", one_line(name), one_line(detail), one_line(fix)),
            None => format!("✗ {}: {}", one_line(name), one_line(detail)),
        },
        Event::Error { message, .. } => format!("error: {message}"),
    })
}

/// A failed lifecycle event with its diagnostics: the script, the agent's
/// message and the script's last output, indented under it.
fn lifecycle_failure(
    target_id: &str,
    lifecycle_event: &str,
    error_code: Option<&str>,
    script_name: Option<&str>,
    message: Option<&str>,
    log_tail: Option<&str>,
) -> String {
    let mut s = failure_line(target_id, lifecycle_event, error_code, script_name, message);
    if let Some(tail) = log_tail.filter(|t| !t.trim().is_empty()) {
        s.push_str(&hook_output(tail, lifecycle_event, script_name, &[target_id]));
    }
    s
}

/// The failure itself, without the hook's output: instance, event, error
/// code, script and message (and, for ApplicationStop, whose script it is).
fn failure_line(
    target_id: &str,
    lifecycle_event: &str,
    error_code: Option<&str>,
    script_name: Option<&str>,
    message: Option<&str>,
) -> String {
    let mut s = format!("instance {} failed {}", one_line(target_id), one_line(lifecycle_event));
    if let Some(code) = error_code {
        s.push_str(&format!(" [{}]", one_line(code)));
    }
    if let Some(script) = script_name.filter(|s| !s.is_empty()) {
        s.push_str(&format!(" in {}", one_line(script)));
    }
    if let Some(msg) = message.filter(|m| !m.is_empty()) {
        s.push_str(&format!(": {}", one_line(msg)));
    }
    if lifecycle_event == "ApplicationStop" {
        s.push_str(APPLICATION_STOP_TRAP);
    }
    s
}

/// Under a failed ApplicationStop: the script that failed is the installed
/// revision's, so a fixed script in the new bundle never runs in its place.
const APPLICATION_STOP_TRAP: &str = "\n    note: ApplicationStop runs the script of the revision already installed on \
     the instance, not this bundle's, so fixing it in the new bundle cannot help. Release once with \
     --ignore-application-stop-failures (or `ignore_application_stop_failures = true`) to get past it; \
     see docs/troubleshooting.md, \"ApplicationStop\".";

/// The agent's `logTail` of the instances `targets` (one output, however
/// many instances printed it), decoded ([`agent_log`]) under one header,
/// `--- hook output of i-1, i-2 … ---`: its lines indented so none can pass
/// for a line of ferry's, stdout after `| ` and stderr after `! ` (the
/// renderers drop what control characters are left in them, a progress
/// bar's \r say). A first line the agent's truncation cut is shown after
/// `… `; a script other than the failed one, or another lifecycle event
/// the tail reaches back into, is named in brackets before its lines.
pub(crate) fn hook_output(tail: &str, lifecycle_event: &str, script_name: Option<&str>, targets: &[&str]) -> String {
    let of: Vec<String> = targets.iter().map(|t| one_line(t).into_owned()).collect();
    let mut s = format!("\n    --- hook output of {} (last lines; ! = stderr) ---", of.join(", "));
    let mut first_script = true;
    for (i, line) in agent_log::decode(tail).into_iter().enumerate() {
        match line {
            agent_log::Line::LifecycleEvent(name) if name == lifecycle_event => {}
            agent_log::Line::LifecycleEvent(name) => s.push_str(&format!("\n    [during {}]", one_line(&name))),
            agent_log::Line::Script(path) => {
                // The failed script is named on the failure's line already.
                if !(first_script && script_name == Some(path.as_str())) {
                    s.push_str(&format!("\n    [{}]", one_line(&path)));
                }
                first_script = false;
            }
            agent_log::Line::Output(stream, text) => {
                let mark = match stream {
                    agent_log::Stream::Stderr => "! ",
                    agent_log::Stream::Stdout => "| ",
                    agent_log::Stream::Unknown if i == 0 => "… ",
                    agent_log::Stream::Unknown => "  ",
                };
                s.push_str("\n    ");
                s.push_str(mark);
                s.push_str(&text);
            }
        }
    }
    s
}

/// How a deployment's end reads in its summary line.
fn word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "FAILED",
        Outcome::Stopped => "STOPPED",
        Outcome::TimedOut => "TIMED OUT",
        Outcome::Ready => "is READY and waiting for traffic to be rerouted",
        Outcome::RolledBack => "ROLLED BACK",
        Outcome::Superseded => "SUPERSEDED",
        Outcome::Aborted => "ABORTED",
    }
}

/// The deployment's last line: outcome, time, counts, reason, failed instances.
fn finished(
    deployment_id: &str,
    outcome: Outcome,
    error: Option<&str>,
    overview: &Overview,
    failed_instances: &[FailedInstance],
    elapsed_ms: u64,
) -> String {
    let word = word(outcome);
    let mut s = format!(
        "deployment {} {word} after {}: {} succeeded, {} failed, {} skipped of {} instances",
        one_line(deployment_id),
        human_ms(elapsed_ms),
        overview.succeeded,
        overview.failed,
        overview.skipped,
        overview.total()
    );
    if let Some(e) = error {
        s.push_str(&format!("\n  reason: {}", one_line(e)));
    }
    for f in failed_instances {
        s.push_str(&format!("\n  failed: {} in {}", one_line(&f.target_id), one_line(&f.lifecycle_events.join(", "))));
    }
    s
}

/// `rolling back GROUP from REVISION (deployment …) to REVISION (…)`.
fn rollback_plan(event: &Event) -> String {
    let Event::RollbackPlanned {
        deployment_group,
        from_deployment_id,
        from_revision,
        to_deployment_id,
        to_revision,
        to_etag,
        to_version_id,
    } = event
    else {
        unreachable!("rollback_plan is only called for RollbackPlanned")
    };
    let from = match (from_revision, from_deployment_id) {
        (Some(r), Some(d)) => format!("{r} (deployment {d})"),
        (Some(r), None) => r.clone(),
        (None, Some(d)) => format!("deployment {d}"),
        (None, None) => "an unknown revision".into(),
    };
    let mut to = to_revision.clone();
    if let Some(d) = to_deployment_id {
        to.push_str(&format!(" (deployment {d})"));
    }
    if let Some(e) = to_etag {
        to.push_str(&format!(", etag {e}"));
    }
    if let Some(v) = to_version_id {
        to.push_str(&format!(", version {v}"));
    }
    format!("rolling back {deployment_group} from {from} to {to}")
}

/// The session ferry will ask STS for: hops, length, tags, identity, policy.
fn session_plan(hops: &[String], duration_seconds: u64, tags: &[String], source_identity: Option<&str>, policy: bool) -> String {
    let mut s = format!("session: {} ({duration_seconds} s per credentials, refreshed before expiry)", hops.join(" → "));
    if !tags.is_empty() {
        s.push_str(&format!(", tags {}", tags.join(" ")));
    }
    if let Some(id) = source_identity {
        s.push_str(&format!(", source identity {id}"));
    }
    if policy {
        s.push_str(", scoped by ferry's session policy");
    }
    s
}

/// `1.50 MiB`-style sizes for log lines (indicatif's, as the bars show them).
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A traffic share as people write it: `10`, `12.5`.
pub(crate) fn percent(p: f64) -> String {
    let rounded = (p * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 { format!("{rounded:.0}") } else { format!("{rounded:.1}") }
}

/// `850ms`, `12s 300ms`, `4m 5s`: exact to the tenth of a second below a
/// minute, to the second above (humantime's units, which `--timeout` takes).
pub fn human_ms(ms: u64) -> String {
    let ms = if ms < 60_000 { ms / 100 * 100 } else { ms / 1000 * 1000 };
    if ms == 0 {
        return "0ms".into();
    }
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// The first `n` characters of `s`, for hashes in log lines. Characters, not
/// bytes: a SHA-256 read from S3 metadata is whatever someone wrote there.
pub fn short(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// What text mode prints on stdout for one `ferry history` row: time,
/// deployment, status, build, sha256 (short), creator, key, kind,
/// description. Tab-separated so `cut` and `awk` work on it (a tab in the
/// description becomes a space); the free text comes last.
pub(crate) fn history_line(h: &HistoryEntry) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        dash(&h.created_at),
        h.deployment_id,
        h.status,
        dash(&h.build),
        h.sha256.as_deref().map(|s| short(s, 12)).unwrap_or("-"),
        h.creator,
        dash(&h.key),
        h.kind,
        one_line(&dash(&h.description)).replace('\t', " ")
    )
}

/// The column names over `ferry history`'s rows ([`history_line`]), with
/// the environment's first for `--wave`.
pub(crate) fn history_header(with_env: bool) -> String {
    let env = if with_env { "ENV\t" } else { "" };
    format!("{env}CREATED\tDEPLOYMENT\tSTATUS\tBUILD\tSHA256\tCREATOR\tKEY\tKIND\tDESCRIPTION")
}

/// What text mode prints on stdout for a receipt: the deployment id alone, so
/// `id=$(ferry release …)` works in a shell step.
pub(crate) fn receipt_line(r: &Receipt) -> String {
    r.deployment_id.clone().unwrap_or_default()
}

/// What text mode prints on stdout for a wave: one `ENV<TAB>DEPLOYMENT`
/// line per environment that got a deployment.
pub(crate) fn wave_receipt_lines(r: &crate::event::WaveReceipt) -> Vec<String> {
    r.envs.iter().filter_map(|e| e.receipt.deployment_id.as_ref().map(|d| format!("{}\t{d}", e.receipt.environment))).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One of each kind of event, with hostile hook output in it.
    pub(crate) fn sample_events() -> Vec<Event> {
        vec![
            Event::BundleReady {
                path: "app".into(),
                bundle_type: crate::config::BundleType::Zip,
                size: 10,
                sha256: "ab".repeat(32),
                built: true,
                cached: false,
            },
            Event::Assumed {
                role_arn: "arn:aws:iam::222222222222:role/R".into(),
                session_name: "s".into(),
                assumed_arn: "a".into(),
            },
            Event::UploadStarted { bucket: "b".into(), key: "k".into(), size: 10 },
            Event::UploadProgress { sent: 5, total: 10 },
            Event::Uploaded { bucket: "b".into(), key: "k".into(), etag: "e".into(), version_id: None, size: 10 },
            Event::DeploymentCreated { deployment_id: "d-123".into(), application: "a".into(), deployment_group: "g".into() },
            Event::DeploymentStatus { deployment_id: "d-123".into(), status: "InProgress".into(), overview: Overview::default() },
            Event::TargetEventChanged {
                deployment_id: "d-123".into(),
                target_id: "i-1".into(),
                lifecycle_event: "Install".into(),
                status: "Succeeded".into(),
                duration_ms: Some(1500),
                position: 4,
                events_total: 7,
            },
            Event::LifecycleFailed {
                deployment_id: "d-123".into(),
                target_id: "i-1".into(),
                lifecycle_event: "AfterInstall".into(),
                error_code: Some("ScriptFailed".into()),
                script_name: Some("s.sh".into()),
                message: Some("failed".into()),
                log_tail: Some("\u{1b}[31mboom\u{1b}[0m\r\nprogress 50%\rprogress 100%".into()),
            },
            Event::UploadResent { part: Some(2), attempt: 2, attempts: 4, detail: "BadDigest: did not match".into() },
            Event::Warning { message: "lost contact".into() },
            Event::Finished {
                deployment_id: "d-123".into(),
                outcome: Outcome::Failed,
                error: Some("HEALTH_CONSTRAINTS: too many failed".into()),
                overview: Overview { failed: 1, ..Default::default() },
                failed_instances: vec![FailedInstance { target_id: "i-1".into(), lifecycle_events: vec!["AfterInstall".into()] }],
                elapsed_ms: 61_000,
            },
            Event::Receipt(Receipt { deployment_id: Some("d-123".into()), ..Default::default() }),
            Event::Error { class: "deploy".into(), exit_code: 2, message: "refused".into() },
        ]
    }

    /// A writer the renderers' tests read back.
    #[derive(Clone, Default)]
    pub(crate) struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        /// What was written, as text.
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn json_output_is_one_parseable_object_per_line_with_event_and_ts() {
        let buf = Buf::default();
        let r = JsonReporter::new(Box::new(buf.clone()));
        let events = sample_events();
        for e in &events {
            r.report(e);
        }
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), events.len());
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(v["event"].is_string() && v["ts"].is_string(), "{line}");
        }
        assert!(text.contains(r#""event":"receipt""#) && text.contains(r#""deployment_id":"d-123""#));
    }

    #[test]
    fn durations_in_log_lines_keep_tenths_below_a_minute_and_seconds_above() {
        assert_eq!(human_ms(850), "800ms");
        assert_eq!(human_ms(12_345), "12s 300ms");
        assert_eq!(human_ms(245_900), "4m 5s");
        assert_eq!(human_ms(40), "0ms");
    }

    #[test]
    fn a_non_ascii_sha256_from_s3_metadata_is_shortened_not_panicked_on() {
        let h =
            HistoryEntry {
                deployment_id: "d-1".into(), sha256: Some("ünïcødé-ünïcødé-ünïcødé".into()), ..Default::default()
            };
        assert!(history_line(&h).contains("\tünïcødé-ünïc\t"), "{}", history_line(&h));
    }

    /// Issue 18 item 13: a newline in a value (here JOB_NAME, inside another
    /// run's deployment description) must not start a line of its own.
    #[test]
    fn a_newline_in_a_value_cannot_forge_a_log_line() {
        let forged = "2026-01-01T00:00:00Z deployment d-FAKE succeeded";
        let description = format!("ferry build 7 of web\n{forged}\rx by s");
        let queued = Event::Queued {
            deployment_id: "d-123".into(),
            creator: Some("user".into()),
            description: Some(description.clone()),
            timeout_s: 60,
        };
        let text = describe(&queued).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("web\\n2026-01-01T00:00:00Z deployment d-FAKE succeeded\\rx"), "{text}");
        let failed = Event::Finished {
            deployment_id: "d-1".into(),
            outcome: Outcome::Failed,
            error: Some(format!("bad\n{forged}")),
            overview: Overview::default(),
            failed_instances: vec![FailedInstance { target_id: format!("i-1\n{forged}"), lifecycle_events: vec![] }],
            elapsed_ms: 1,
        };
        let text = describe(&failed).unwrap();
        assert!(text.lines().all(|l| !l.starts_with("2026")), "{text}");
        assert_eq!(text.lines().count(), 3, "the outcome, its reason and the failed instance: {text}");
        let warning = Event::Warning { message: format!("x\n{forged}") };
        assert_eq!(describe(&warning).unwrap().lines().count(), 1);
        let error = Event::Error { class: "config".into(), exit_code: 1, message: format!("quoted:\n{forged}") };
        let text = describe(&error).unwrap();
        assert!(text.lines().skip(1).all(|l| l.starts_with("  ")), "{text}");
    }

    /// scripts/migrate.sh failing AfterInstall on i-1, with `log_tail`.
    fn migrate_failed(log_tail: &str) -> Event {
        Event::LifecycleFailed {
            deployment_id: "d-1".into(),
            target_id: "i-1".into(),
            lifecycle_event: "AfterInstall".into(),
            error_code: Some("ScriptFailed".into()),
            script_name: Some("scripts/migrate.sh".into()),
            message: Some("Script at specified location: scripts/migrate.sh run as user root failed with exit code 1".into()),
            log_tail: Some(log_tail.into()),
        }
    }

    #[test]
    fn a_failed_application_stop_says_the_script_is_the_installed_revisions_and_offers_the_flag() {
        let Event::LifecycleFailed { deployment_id, target_id, error_code, script_name, message, log_tail, .. } =
            migrate_failed("[stderr]boom")
        else {
            unreachable!()
        };
        let stop = Event::LifecycleFailed {
            lifecycle_event: "ApplicationStop".into(),
            deployment_id,
            target_id,
            error_code,
            script_name,
            message,
            log_tail,
        };
        let text = describe(&stop).unwrap();
        assert!(text.contains("revision already installed"), "{text}");
        assert!(text.contains("--ignore-application-stop-failures"), "{text}");
        assert!(text.lines().skip(1).all(|l| l.starts_with("    ")), "indented under the failure: {text}");
        assert!(!describe(&migrate_failed("x")).unwrap().contains("--ignore-application-stop-failures"));
    }

    #[test]
    fn failed_lifecycle_event_shows_script_output_indented() {
        let e = migrate_failed("[stdout]migrating\n[stderr]boom");
        let text = describe(&e).unwrap();
        assert!(text.starts_with("instance i-1 failed AfterInstall [ScriptFailed] in scripts/migrate.sh"), "{text}");
        assert!(text.contains("\n    | migrating\n    ! boom"), "{text}");
        assert!(!text.contains("[stdout]") && !text.contains("[stderr]"), "{text}");
    }

    #[test]
    fn the_real_agents_log_tail_names_the_script_once_and_tells_the_streams_apart() {
        // As the agent writes it, cut at the front by its 2,048-character bound.
        let e = migrate_failed(
            "ng step 1\nLifecycleEvent - AfterInstall\nScript - scripts/migrate.sh\n[stdout]migrating\n[stderr]boom\n[stdout]done",
        );
        let text = describe(&e).unwrap();
        let out: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            out,
            [
                "    --- hook output of i-1 (last lines; ! = stderr) ---",
                "    … ng step 1",
                "    | migrating",
                "    ! boom",
                "    | done",
            ],
            "{text}"
        );
        assert_eq!(text.matches("scripts/migrate.sh").count(), 2, "the header line and the agent's message: {text}");
    }
}
