//! One file per subcommand, each a thin script over the pipeline modules.

pub mod bundle;
pub mod check;
pub mod completions;
pub mod continue_deployment;
pub mod credential_process;
pub mod doctor;
pub mod env;
pub mod error;
pub mod exec;
pub mod history;
pub mod policy;
pub mod release;
pub mod rollback;
pub mod status;
pub mod stop;
pub mod upload;
pub mod watch;
pub mod wave;

use aws_config::SdkConfig;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;
use crate::report;

use crate::assume::{self, AssumeOptions, Session, provenance};
use crate::bundle::{Bundle, BundleType};
use crate::cmd::error::Error;
use crate::config::Environment;
use crate::event::{Event, Reporter};

/// Runs a parsed command line and returns the process exit code. Errors are
/// reported through the reporter, never printed here.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(timeout) = cli.command.timeout() {
        crate::deadline::start(timeout);
    }
    let mut reporter = report::choose(cli.output, cli.progress, cli.command.stdout_is_product());
    if let Some(path) = &cli.junit {
        reporter = Box::new(report::junit::Tee(reporter, Box::new(report::junit::JunitReporter::new(path))));
    }
    if cli.debug {
        report::debug::init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            reporter.report(&Event::Error {
                class: "internal".into(),
                exit_code: ExitCode::Aws.code(),
                message: format!("cannot start the async runtime: {e}"),
            });
            return ExitCode::Aws;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Release(args) => release::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Watch(args) => watch::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Bundle(args) => bundle::run(args, reporter.as_ref()).await,
            Command::Check(args) => check::run(args, reporter.as_ref()).await,
            Command::Upload(args) => upload::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Status(args) => status::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Completions(args) => completions::completions(args.shell),
            Command::Man => completions::man(),
            Command::Policy(args) => policy::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Exec(args) => exec::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Env(args) => env::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::CredentialProcess(args) => credential_process::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Doctor(args) => doctor::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Rollback(args) => rollback::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Stop(args) => stop::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Continue(args) => continue_deployment::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::History(args) => history::run(args, cli.config.clone(), reporter.as_ref()).await,
        }
    });
    // Do not wait for blocking threads still at work (a bundle being built
    // when a signal came): the process exits now, and they with it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            let message = crate::aws_error::request_ids_last(&err.to_string());
            reporter.report(&Event::Error { class: err.class().into(), exit_code: code.code(), message });
            code
        }
    }
}

/// Assumes the environment's role with the session name from the process
/// environment, and reports who ferry now is.
pub(crate) async fn assume_role(env: &Environment, reporter: &dyn Reporter) -> Result<(SdkConfig, Session), Error> {
    let opts = assume_options(env, reporter);
    let dog = crate::deadline::Watchdog::new("STS", "assuming the role", reporter);
    let (sdk, session) = dog.run(assume::assume(env, &opts)).await??;
    reporter.report(&Event::Assumed {
        role_arn: session.role_arn.clone(),
        session_name: session.session_name.clone(),
        assumed_arn: session.assumed_arn.clone(),
    });
    Ok((sdk, session))
}

/// Builds or takes the bundle at `path`, checked, and reports it.
pub(crate) fn prepare_bundle(path: &Path, kind: BundleType, reporter: &dyn Reporter) -> Result<Bundle, Error> {
    let bundle = crate::bundle::prepare_as(path, kind)?;
    report_bundle(path, &bundle, reporter);
    Ok(bundle)
}

/// The bundle is ready: what it is, and why no cache was used when that is
/// worth fixing.
fn report_bundle(path: &Path, bundle: &Bundle, reporter: &dyn Reporter) {
    reporter.report(&Event::BundleReady {
        path: path.display().to_string(),
        bundle_type: bundle.kind,
        size: bundle.size,
        sha256: bundle.sha256.clone(),
        built: bundle.built,
        cached: bundle.cached,
    });
    if let Some(why) = &bundle.cache_off {
        reporter.report(&Event::Warning { message: format!("not caching the bundle of {}: {why}", path.display()) });
    }
}

/// [`prepare_bundle`] on a blocking thread, so a signal can stop the
/// release while it runs, with a built archive's temporary file inside
/// `temp_dir`.
pub(crate) async fn prepare_bundle_in(
    path: &Path,
    kind: BundleType,
    temp_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<Bundle, Error> {
    let (input, dir) = (path.to_path_buf(), temp_dir.to_path_buf());
    let bundle =
        tokio::task::spawn_blocking(move || crate::bundle::prepare_in(&input, kind, Some(&dir))).await.map_err(|e| {
            crate::bundle::BundleError::Io {
                action: "build the bundle of",
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            }
        })??;
    report_bundle(path, &bundle, reporter);
    Ok(bundle)
}

/// A temporary directory of ferry's own for the bundle it builds, removed
/// when dropped.
pub(crate) fn bundle_temp_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new().prefix("ferry-release-").tempdir().map_err(|source| {
        Error::Bundle(crate::bundle::BundleError::Io {
            action: "create a temporary directory in",
            path: std::env::temp_dir(),
            source,
        })
    })
}

/// The session name ferry will ask STS for, known before it asks: the
/// receipt carries it even when the role cannot be assumed.
pub(crate) fn planned_session_name(env: &Environment) -> String {
    assume::session_name_for(BuildEnv::current(), env.session_name.as_deref())
}

/// The session ferry asks STS for, from the environment's settings and the
/// build's variables; reports the plan and anything ferry had to adjust.
pub(crate) fn assume_options(env: &Environment, reporter: &dyn Reporter) -> AssumeOptions {
    let build = BuildEnv::current();
    let opts = AssumeOptions {
        session_name: assume::session_name_for(build, env.session_name.as_deref()),
        duration: None,
        tags: if env.session_tags { provenance::session_tags(build) } else { Vec::new() },
        source_identity: provenance::source_identity(env.source_identity.as_deref(), build),
        policy: env.session_policy.then(|| crate::policy::session(env)),
    };
    let (hops, notes) = assume::plan(env, &opts);
    for message in notes {
        reporter.report(&Event::Warning { message });
    }
    reporter.report(&Event::SessionPlanned {
        hops: hops.iter().map(|h| h.role.arn.clone()).collect(),
        duration_seconds: hops.last().map_or(0, |h| h.duration.as_secs()),
        tags: opts.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        source_identity: opts.source_identity.clone(),
        session_policy: opts.policy.is_some(),
    });
    opts
}
