//! One instance's run through the lifecycle events, doing what the agent
//! does on a real host, inside the instance's directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, event_name, faults, pace, success, unknown_error};
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

/// Runs every lifecycle event on instance `index`; `true` if it ends healthy.
pub(super) async fn run(ctx: Arc<Context>, index: usize) -> bool {
    let Some(instance_id) = ctx.update(|d| d.instances[index].instance_id.clone()) else {
        return false;
    };
    let layout = Layout::new(&ctx, &instance_id);
    let step = ctx.shared.config.step_delay;
    let mut appspec: Option<AppSpec> = None;
    for event in 0..crate::model::LIFECYCLE_EVENTS.len() {
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
        let name = event_name(event);
        let result = match &ctx.fault {
            Some(fault) if fault.hits(name, index) => Err(injected(name)),
            _ => perform(&ctx, &layout, &instance_id, name, &mut appspec).await,
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
    finish_instance(&ctx, index, crate::model::LIFECYCLE_EVENTS.len(), TargetStatus::Succeeded);
    true
}

/// Marks events from `from` on as Skipped and sets the instance's final status.
fn finish_instance(ctx: &Context, index: usize, from: usize, status: TargetStatus) {
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

fn injected(event: &str) -> Diagnostics {
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

async fn perform(
    ctx: &Context,
    layout: &Layout,
    instance_id: &str,
    event: &str,
    appspec: &mut Option<AppSpec>,
) -> Result<Diagnostics, Diagnostics> {
    match event {
        "ApplicationStop" => application_stop(ctx, layout, instance_id).await,
        "DownloadBundle" => {
            *appspec = Some(download_bundle(ctx, layout).await?);
            Ok(success())
        }
        "Install" => {
            let spec = appspec.clone().unwrap_or_default();
            let behavior = match (&spec.file_exists_behavior, ctx.file_exists_behavior.as_str()) {
                // The deployment's explicit choice wins over the appspec's; DISALLOW is the default.
                (Some(from_appspec), "DISALLOW") => from_appspec.clone(),
                _ => ctx.file_exists_behavior.clone(),
            };
            let (root, dir, group_id) = (layout.root.clone(), layout.deployment_dir.clone(), ctx.group_id.clone());
            let cleanup = layout.cleanup_file(&ctx.group_id);
            let marker = layout.last_successful_install(&ctx.group_id);
            tokio::task::spawn_blocking(move || install(&root, &dir, &spec, &behavior, &cleanup, &marker, &group_id))
                .await
                .unwrap_or_else(|e| Err(format!("Install crashed: {e}")))
                .map_err(unknown_error)?;
            Ok(success())
        }
        _ => {
            let archive = Layout::archive(&layout.deployment_dir);
            match appspec {
                Some(spec) => run_hooks(ctx, layout, instance_id, &archive, spec, event).await,
                None => Ok(success()),
            }
        }
    }
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

async fn download_bundle(ctx: &Context, layout: &Layout) -> Result<AppSpec, Diagnostics> {
    let Some(s3) = ctx.revision.s3_location.clone() else {
        return Err(unknown_error("The revision has no S3 location.".into()));
    };
    let bytes = ctx.bundle.get_or_init(|| bundle::download(&ctx.shared, &s3)).await.clone().map_err(unknown_error)?;
    let archive = Layout::archive(&layout.deployment_dir);
    let bundle_type = s3.bundle_type.clone();
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&archive);
        bundle::unpack(&bytes, bundle_type.as_deref(), &archive)?;
        bundle::read_appspec(&archive)
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
        let invocation = Invocation {
            script: path.clone(),
            location: script.location.clone(),
            cwd: archive.to_path_buf(),
            env: vec![
                ("LIFECYCLE_EVENT".into(), event.into()),
                ("DEPLOYMENT_ID".into(), ctx.id.clone()),
                ("APPLICATION_NAME".into(), ctx.application_name.clone()),
                ("DEPLOYMENT_GROUP_NAME".into(), ctx.group_name.clone()),
                ("DEPLOYMENT_GROUP_ID".into(), ctx.group_id.clone()),
                ("EMULATOR_INSTANCE_ID".into(), instance_id.into()),
                ("EMULATOR_INSTANCE_ROOT".into(), layout.root.display().to_string()),
            ],
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
        let fail = |code: &str, message: String| Diagnostics {
            error_code: code.into(),
            script_name: location.clone(),
            message,
            log_tail: log.tail(),
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
        }
    }
    // A succeeded event reports no script and no log: the agent sends its
    // success diagnostics with an empty script name and an empty log.
    Ok(success())
}

/// Copies the appspec's files into the instance root, first removing what the
/// previous install put there, and records this install for the next one.
fn install(
    root: &Path,
    deployment_dir: &Path,
    spec: &AppSpec,
    behavior: &str,
    cleanup_file: &Path,
    marker: &Path,
    _group_id: &str,
) -> Result<(), String> {
    if let Ok(previous) = std::fs::read_to_string(cleanup_file) {
        for line in previous.lines().filter(|l| !l.is_empty()) {
            if let Ok(path) = bundle::confine(root, line) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let archive = Layout::archive(deployment_dir);
    let mut installed = Vec::new();
    for mapping in &spec.files {
        let source = bundle::confine(&archive, &mapping.source)?;
        let destination = bundle::confine(root, &mapping.destination)?;
        let mut pairs = Vec::new();
        if source.is_file() {
            let name = source.file_name().ok_or("source has no file name")?;
            pairs.push((source.clone(), destination.join(name)));
        } else if source.is_dir() {
            collect(&source, &destination, &mut pairs).map_err(|e| format!("Cannot read {}: {e}", source.display()))?;
        } else {
            return Err(format!("The source {} named in the AppSpec file does not exist in the revision.", mapping.source));
        }
        for (from, to) in pairs {
            let shown = format!("/{}", to.strip_prefix(root).unwrap_or(&to).display());
            if to.exists() {
                match behavior {
                    "OVERWRITE" => {}
                    "RETAIN" => continue,
                    _ => {
                        return Err(format!(
                            "The deployment failed because a specified file already exists at this location: {shown}"
                        ));
                    }
                }
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("Cannot create {}: {e}", parent.display()))?;
            }
            std::fs::copy(&from, &to).map_err(|e| format!("Cannot copy to {shown}: {e}"))?;
            installed.push(shown);
        }
    }
    if let Some(dir) = cleanup_file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(cleanup_file, installed.join("\n")).map_err(|e| e.to_string())?;
    std::fs::write(marker, deployment_dir.display().to_string()).map_err(|e| e.to_string())?;
    Ok(())
}

fn collect(dir: &Path, dest: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let target = dest.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            collect(&path, &target, out)?;
        } else {
            out.push((path, target));
        }
    }
    Ok(())
}
