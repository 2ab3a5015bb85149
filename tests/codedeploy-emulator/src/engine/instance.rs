//! One instance's run through the lifecycle events, doing what the agent
//! does on a real host, inside the instance's directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, faults, install, pace, success, unknown_error};
use crate::bundle::{self, AppSpec};
use crate::hooks::{self, EventLog, Invocation, Outcome};
use crate::model::{Diagnostics, TargetStatus, now};

/// Where one instance keeps things, mirroring the agent's layout under the
/// instance root.
struct Layout {
    /// The instance root; appspec destinations are mapped under it.
    root: PathBuf,
    /// `deployment-root/<group id>/<deployment id>` of this deployment.
    deployment_dir: PathBuf,
    /// `deployment-root/deployment-instructions`.
    instructions: PathBuf,
}

impl Layout {
    fn new(ctx: &Context, instance_id: &str) -> Self {
        let root = ctx.shared.work_dir.join(&ctx.group_name).join(instance_id);
        let agent_root = root.join("opt/codedeploy-agent/deployment-root");
        Self {
            deployment_dir: agent_root.join(&ctx.group_id).join(&ctx.id),
            instructions: agent_root.join("deployment-instructions"),
            root,
        }
    }

    fn archive(deployment_dir: &Path) -> PathBuf {
        deployment_dir.join("deployment-archive")
    }

    fn last_successful_install(&self, group_id: &str) -> PathBuf {
        self.instructions.join(format!("{group_id}_last_successful_install"))
    }

    fn cleanup_file(&self, group_id: &str) -> PathBuf {
        self.instructions.join(format!("{group_id}-cleanup"))
    }
}

/// Runs lifecycle events `events` (by position) of instance `index`; `true`
/// if it ends healthy, with status `done`.
pub(super) async fn run(ctx: Arc<Context>, index: usize, events: std::ops::Range<usize>, done: TargetStatus) -> bool {
    let Some((instance_id, names)) = ctx.update(|d| {
        let inst = &d.instances[index];
        (inst.instance_id.clone(), inst.events.iter().map(|e| e.lifecycle_event_name.clone()).collect::<Vec<_>>())
    }) else {
        return false;
    };
    let layout = Layout::new(&ctx, &instance_id);
    let step = ctx.shared.config.step_delay;
    for event in events {
        if ctx.stop_requested() {
            finish_instance(&ctx, index, event, TargetStatus::Failed);
            return false;
        }
        let started = Instant::now();
        ctx.update(|d| {
            let inst = &mut d.instances[index];
            let t = now();
            inst.status = TargetStatus::InProgress;
            inst.last_updated = t;
            inst.events[event].status = TargetStatus::InProgress;
            inst.events[event].start_time = Some(t);
        });
        let name = names[event].as_str();
        let result = match &ctx.fault {
            Some(fault) if fault.hits(name, index) => Err(injected(name)),
            _ => perform(&ctx, &layout, &instance_id, name).await,
        };
        let result = match result {
            Err(diag) if name == "ApplicationStop" && ctx.ignore_application_stop_failures => {
                Ok(Diagnostics { message: format!("Failure ignored (ignoreApplicationStopFailures): {}", diag.message), ..diag })
            }
            other => other,
        };
        pace(started, step).await;
        let ok = result.is_ok();
        ctx.update(|d| {
            let inst = &mut d.instances[index];
            let t = now();
            inst.last_updated = t;
            let e = &mut inst.events[event];
            e.end_time = Some(t);
            match result {
                Ok(diag) => {
                    e.status = TargetStatus::Succeeded;
                    e.diagnostics = Some(diag);
                }
                Err(diag) => {
                    e.status = TargetStatus::Failed;
                    e.diagnostics = Some(diag);
                }
            }
        });
        if !ok {
            finish_instance(&ctx, index, event + 1, TargetStatus::Failed);
            return false;
        }
    }
    // Nothing is skipped: later events (a blue/green replacement's traffic
    // events) run in a later phase.
    finish_instance(&ctx, index, names.len(), done);
    true
}

/// Marks events from `from` on as Skipped and sets the instance's final status.
pub(super) fn finish_instance(ctx: &Context, index: usize, from: usize, status: TargetStatus) {
    ctx.update(|d| {
        let inst = &mut d.instances[index];
        let t = now();
        // Events skipped after a failure (or a stop) on this instance carry
        // the moment they were skipped as their endTime, as on AWS.
        for e in inst.events.iter_mut().skip(from) {
            e.status = TargetStatus::Skipped;
            e.end_time = Some(t);
        }
        inst.status = status;
        inst.last_updated = t;
    });
}

pub(super) fn injected(event: &str) -> Diagnostics {
    // Shaped like a script failure reported by the agent, so callers render
    // the same thing they would on AWS.
    let mut log = hooks::ScriptLog::new();
    log.append(format!("LifecycleEvent - {event}\n"));
    log.append(format!("Script - {}\n", faults::FAIL_EVENT_TAG));
    log.append(format!("[stderr]emulator: the deployment group's {} tag fails {event} here\n", faults::FAIL_EVENT_TAG));
    Diagnostics {
        error_code: "ScriptFailed".into(),
        script_name: faults::FAIL_EVENT_TAG.into(),
        message: format!("Injected failure: the deployment group's emulator:fail-event tag fails {event} on this instance."),
        log_tail: log.text(),
    }
}

async fn perform(ctx: &Context, layout: &Layout, instance_id: &str, event: &str) -> Result<Diagnostics, Diagnostics> {
    if let Some(host) = ctx.agent_hosts.get(instance_id) {
        return on_agent(ctx, host, instance_id, event).await;
    }
    match event {
        "ApplicationStop" => application_stop(ctx, layout, instance_id).await,
        // Load balancer (de)registration, done by the service, not the agent;
        // the emulator has no load balancer, so it only takes its time.
        "AllowTraffic" | "BlockTraffic" => Ok(success()),
        "BeforeAllowTraffic" | "AfterAllowTraffic" | "BeforeBlockTraffic" | "AfterBlockTraffic" => {
            traffic_hook(ctx, layout, instance_id, event).await
        }
        "DownloadBundle" => {
            download_bundle(ctx, layout).await?;
            Ok(success())
        }
        "Install" => {
            // The agent reads the appspec afresh for every event.
            let archive = Layout::archive(&layout.deployment_dir);
            let spec = bundle::read_appspec(&archive).map_err(unknown_error)?;
            let root = layout.root.clone();
            let on_instance = |p: &Path| format!("/{}", p.strip_prefix(&root).unwrap_or(p).display());
            let plan = install::Install {
                root: &layout.root,
                archive: on_instance(&archive),
                cleanup_file: on_instance(&layout.cleanup_file(&ctx.group_id)),
                deployment_behavior: &ctx.file_exists_behavior,
            };
            let result = tokio::task::block_in_place(|| install::install(&plan, &spec));
            result.map_err(unknown_error)?;
            let marker = layout.last_successful_install(&ctx.group_id);
            std::fs::write(&marker, layout.deployment_dir.display().to_string()).map_err(|e| unknown_error(e.to_string()))?;
            Ok(success())
        }
        _ => {
            let archive = Layout::archive(&layout.deployment_dir);
            // A revision that was never unpacked here has nothing to run.
            if !archive.is_dir() {
                return Ok(success());
            }
            let spec = bundle::read_appspec(&archive).map_err(unknown_error)?;
            run_hooks(ctx, layout, instance_id, &archive, &spec, event).await
        }
    }
}

/// Runs `event` on the instance's real CodeDeploy agent.
async fn on_agent(ctx: &Context, host: &str, instance_id: &str, event: &str) -> Result<Diagnostics, Diagnostics> {
    let spec = ctx.signed_spec.get_or_init(|| signed_spec(ctx)).await.clone().map_err(unknown_error)?;
    let execution_id = format!("CodeDeploy/{}/{}/{instance_id}", ctx.shared.config.region, ctx.id);
    crate::commands::run_event(&ctx.shared, host, &execution_id, &spec, event).await
}

async fn signed_spec(ctx: &Context) -> Result<String, String> {
    let pki = ctx.shared.config.agent_pki.clone().ok_or("The emulator was started without an agent PKI (Config::agent_pki), so it cannot sign deployment specifications for on-premises instances.")?;
    let s3 = ctx.revision.s3_location.clone().ok_or("The revision has no S3 location.")?;
    let json = crate::commands::spec_json(&crate::commands::SpecFields {
        deployment_id: &ctx.id,
        group_id: &ctx.group_id,
        group_name: &ctx.group_name,
        application_name: &ctx.application_name,
        creator: &ctx.creator,
        file_exists_behavior: &ctx.file_exists_behavior,
        s3: &s3,
    });
    tokio::task::spawn_blocking(move || pki.sign(json.as_bytes())).await.unwrap_or_else(|e| Err(format!("signing crashed: {e}")))
}

/// ApplicationStop runs the hook of the last revision this instance installed
/// successfully, as the agent does; a fresh instance has nothing to stop.
async fn application_stop(ctx: &Context, layout: &Layout, instance_id: &str) -> Result<Diagnostics, Diagnostics> {
    let marker = layout.last_successful_install(&ctx.group_id);
    let Ok(previous) = std::fs::read_to_string(&marker) else {
        return Ok(success());
    };
    let archive = Layout::archive(Path::new(previous.trim()));
    if !archive.is_dir() {
        return Ok(success());
    }
    let spec = bundle::read_appspec(&archive).map_err(unknown_error)?;
    run_hooks(ctx, layout, instance_id, &archive, &spec, "ApplicationStop").await
}

/// A traffic hook runs the scripts of the revision on the instance: this
/// deployment's on a replacement that installed it, else the last revision
/// installed successfully (an original instance, or one a rollback gives
/// traffic back to). An instance that never installed has nothing to run.
async fn traffic_hook(ctx: &Context, layout: &Layout, instance_id: &str, event: &str) -> Result<Diagnostics, Diagnostics> {
    let current = Layout::archive(&layout.deployment_dir);
    let archive = if current.is_dir() {
        current
    } else {
        match std::fs::read_to_string(layout.last_successful_install(&ctx.group_id)) {
            Ok(previous) => Layout::archive(Path::new(previous.trim())),
            Err(_) => return Ok(success()),
        }
    };
    if !archive.is_dir() {
        return Ok(success());
    }
    let spec = bundle::read_appspec(&archive).map_err(unknown_error)?;
    run_hooks(ctx, layout, instance_id, &archive, &spec, event).await
}

async fn download_bundle(ctx: &Context, layout: &Layout) -> Result<(), Diagnostics> {
    let Some(s3) = ctx.revision.s3_location.clone() else {
        return Err(unknown_error("The revision has no S3 location.".into()));
    };
    let bytes = ctx.bundle.get_or_init(|| bundle::download(&ctx.shared, &s3)).await.clone().map_err(unknown_error)?;
    let archive = Layout::archive(&layout.deployment_dir);
    let bundle_type = s3.bundle_type.clone();
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&archive);
        // The appspec is read by the events that need it, from BeforeInstall
        // on, as the agent does: a bad one fails BeforeInstall, not this.
        bundle::unpack(&bytes, bundle_type.as_deref(), &archive)
    })
    .await
    .unwrap_or_else(|e| Err(format!("Unpacking crashed: {e}")))
    .map_err(unknown_error)
}

async fn run_hooks(
    ctx: &Context,
    layout: &Layout,
    instance_id: &str,
    archive: &Path,
    spec: &AppSpec,
    event: &str,
) -> Result<Diagnostics, Diagnostics> {
    let Some(scripts) = spec.hooks.get(event).filter(|s| !s.is_empty()) else {
        return Ok(success());
    };
    // One log per lifecycle event, as the agent keeps one per hook executor.
    let log = EventLog::start(event, layout.deployment_dir.join("logs/scripts.log"));
    for script in scripts {
        let path = bundle::confine(archive, &script.location).map_err(unknown_error)?;
        let timeout = script.timeout.map(Duration::from_secs).unwrap_or(hooks::DEFAULT_TIMEOUT);
        let mut env: Vec<(String, String)> = vec![
            ("LIFECYCLE_EVENT".into(), event.into()),
            ("DEPLOYMENT_ID".into(), ctx.id.clone()),
            ("APPLICATION_NAME".into(), ctx.application_name.clone()),
            ("DEPLOYMENT_GROUP_NAME".into(), ctx.group_name.clone()),
            ("DEPLOYMENT_GROUP_ID".into(), ctx.group_id.clone()),
            ("EMULATOR_INSTANCE_ID".into(), instance_id.into()),
            ("EMULATOR_INSTANCE_ROOT".into(), layout.root.display().to_string()),
        ];
        // The revision's location, as the agent exports it for an S3 revision
        // (an absent version or eTag is left unset, as Ruby does with nil).
        if let Some(s3) = &ctx.revision.s3_location {
            for (name, value) in [
                ("BUNDLE_BUCKET", &s3.bucket),
                ("BUNDLE_KEY", &s3.key),
                ("BUNDLE_VERSION", &s3.version),
                ("BUNDLE_ETAG", &s3.e_tag),
            ] {
                if let Some(v) = value {
                    env.push((name.into(), v.clone()));
                }
            }
        }
        let invocation = Invocation {
            script: path.clone(),
            location: script.location.clone(),
            // The agent never changes directory: scripts run in its own
            // working directory, `/` when systemd starts it.
            cwd: PathBuf::from("/"),
            runas: script.runas.clone(),
            env,
            timeout,
        };
        let outcome = {
            let _slot = ctx.shared.hook_slots.acquire().await;
            hooks::run(&invocation, &log).await
        };
        let location = &script.location;
        // The agent's messages, word for word.
        let at = match &script.runas {
            Some(user) => format!("Script at specified location: {location} run as user {user}"),
            None => format!("Script at specified location: {location}"),
        };
        let fail = |code: &str, message: String| {
            if !log.is_utf8() {
                // The agent cannot encode the log as JSON and says so instead.
                let (message, log_tail) = hooks::minimal_diagnostics();
                return Diagnostics {
                    error_code: "UnknownError".into(),
                    script_name: location.clone(),
                    message: message.into(),
                    log_tail: log_tail.into(),
                };
            }
            Diagnostics { error_code: code.into(), script_name: location.clone(), message, log_tail: log.tail() }
        };
        match outcome {
            Outcome::Succeeded => {}
            // Killed by a signal, Ruby's exit status is nil: "exit code " and nothing.
            Outcome::Failed(code) => {
                let code = code.map(|c| c.to_string()).unwrap_or_default();
                return Err(fail("ScriptFailed", format!("{at} failed with exit code {code}")));
            }
            Outcome::TimedOut => {
                return Err(fail(
                    "ScriptTimedOut",
                    format!("Script at specified location: {location} failed to complete in {} seconds", timeout.as_secs()),
                ));
            }
            Outcome::Missing => {
                // The agent names the absolute path on the instance.
                let on_instance = Path::new("/").join(path.strip_prefix(&layout.root).unwrap_or(&path));
                return Err(fail(
                    "ScriptMissing",
                    format!("Script does not exist at specified location: {}", on_instance.display()),
                ));
            }
            Outcome::OutputLeftOpen(stream) => {
                return Err(fail("ScriptFailed", format!("Script at specified location: {location} failed to close {stream}")));
            }
            Outcome::NotExecutable => {
                return Err(fail(
                    "ScriptNotExecutable",
                    format!("Unable to set script at specified location: {location} as executable"),
                ));
            }
        }
    }
    // A succeeded event reports no script and no log: the agent sends its
    // success diagnostics with an empty script name and an empty log.
    Ok(success())
}
