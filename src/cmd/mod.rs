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
pub mod plan;
pub mod policy;
pub mod release;
pub mod rollback;
pub mod status;
pub mod stop;
pub mod upload;
pub mod watch;
pub mod wave;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::exit::ExitCode;
use crate::report;

use crate::bundle::{Bundle, BundleType};
use crate::cmd::error::Error;
use crate::event::{Event, Reporter};

/// Runs a parsed command line and returns the process exit code. Errors are
/// reported through the reporter, never printed here.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(timeout) = cli.command.timeout() {
        crate::deadline::start(timeout);
    }
    let mut reporter = report::choose(cli.output, cli.progress, cli.command.stdout_is_product());
    if let Some(path) = &cli.junit {
        // Before any AWS call, as the receipt's: nothing may be deployed
        // whose report cannot be written.
        if let Err(e) = check_junit(path, &cli.command) {
            reporter.report(&Event::Error { class: e.class().into(), exit_code: e.exit_code().code(), message: e.to_string() });
            return e.exit_code();
        }
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
    // The profile flag holds AWS_PROFILE's value too (clap's `env`); the
    // source is told apart for the message.
    let flag = cli.profile.as_deref().filter(|p| std::env::var("AWS_PROFILE").ok().as_deref() != Some(*p));
    crate::assume::mfa::set_code(cli.mfa_code.clone());
    match runtime.block_on(crate::assume::profile::defaults(flag)) {
        Ok(defaults) => crate::config::set_aws_defaults(defaults),
        Err(e) => {
            reporter.report(&Event::Error { class: "config".into(), exit_code: e.exit_code().code(), message: e.to_string() });
            runtime.shutdown_background();
            return e.exit_code();
        }
    }
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Release(args) => release::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Plan(args) => plan::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Watch(args) => watch::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Bundle(args) => bundle::run(args, reporter.as_ref()).await,
            Command::Check(args) => check::run(args, reporter.as_ref()).await,
            Command::Upload(args) => upload::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Status(args) => status::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Completions(args) => completions::run(args, cli.config.clone()),
            Command::Man(args) => completions::man(args),
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

pub(crate) use crate::pipeline::{assume_options, assume_role};

/// Whether `--junit` can be written: a file (not `-`, which would be a
/// file named `-`), writable as the receipt must be, and not the receipt.
fn check_junit(path: &Path, command: &Command) -> Result<(), Error> {
    let refuse = |reason: String| Error::Junit { path: path.display().to_string(), reason };
    if path.as_os_str() == "-" {
        return Err(refuse(
            "ferry writes the JUnit report to a file, never to stdout (which carries the result); name a file, e.g. \
             --junit ferry-junit.xml"
                .into(),
        ));
    }
    crate::outfile::check_writable(path).map_err(refuse)?;
    if command.keeps_receipt()
        && let Some(receipt) = crate::receipt::path(command.receipt())
        && same_file(path, &receipt)
    {
        return Err(refuse(format!(
            "it is also the receipt ({}), and one would overwrite the other; give --junit and --receipt different files",
            receipt.display()
        )));
    }
    Ok(())
}

/// Whether two paths name one file, whether or not it exists yet.
fn same_file(a: &Path, b: &Path) -> bool {
    let full = |p: &Path| {
        let dir = crate::outfile::dir_of(p).canonicalize().unwrap_or_else(|_| crate::outfile::dir_of(p));
        p.file_name().map(|n| dir.join(n))
    };
    full(a).is_some() && full(a) == full(b)
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
/// `temp_dir`, for a bundle that holds `holds` (a Lambda function's code
/// has no appspec of its own).
pub(crate) async fn prepare_holding(
    path: &Path,
    kind: BundleType,
    temp_dir: &Path,
    holds: crate::bundle::Holds,
    reporter: &dyn Reporter,
) -> Result<Bundle, Error> {
    let (input, dir) = (path.to_path_buf(), temp_dir.to_path_buf());
    let bundle = tokio::task::spawn_blocking(move || crate::bundle::prepare_holding(&input, kind, Some(&dir), holds))
        .await
        .map_err(|e| crate::bundle::BundleError::Io {
            action: "build the bundle of",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
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

/// With `--wave`: refuses an `--env` typed on the command line; one that
/// only came from `FERRY_ENV` (a Jenkins-wide default) is not a conflict.
fn check_no_env_with_wave(target: &crate::cli::TargetArgs, wave: &str) -> Result<(), error::Error> {
    match &target.env {
        Some(env) if std::env::var("FERRY_ENV").ok().as_deref() != Some(env.as_str()) => {
            Err(error::Error::EnvWithWave { env: env.clone(), wave: wave.to_string() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn junit_check(args: &[&str]) -> Result<(), String> {
        let cli = Cli::try_parse_from(["ferry"].iter().chain(args).copied()).unwrap();
        check_junit(cli.junit.as_deref().unwrap(), &cli.command).map_err(|e| e.to_string())
    }

    /// Issue 23 item 8: `--junit -` wrote a file named `-`; a FIFO, a
    /// directory or a missing directory was found only after the deployment.
    #[test]
    fn junit_paths_that_cannot_take_the_report_are_refused_before_anything_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let e = junit_check(&["--junit", "-", "release", "app"]).unwrap_err();
        assert!(e.contains("never to stdout"), "{e}");
        let e = junit_check(&["--junit", &format!("{d}"), "release", "app"]).unwrap_err();
        assert!(e.contains("is a directory") || e.contains("directory"), "{e}");
        let e = junit_check(&["--junit", &format!("{d}/missing/j.xml"), "release", "app"]).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        junit_check(&["--junit", &format!("{d}/j.xml"), "release", "app"]).unwrap();
    }

    /// Issue 23 item 8: `--junit X --receipt X` silently overwrote one with the other.
    #[test]
    fn junit_and_receipt_in_one_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let same = format!("{}/out.json", dir.path().display());
        let dotted = format!("{}/./out.json", dir.path().display());
        let e = junit_check(&["--junit", &same, "release", "app", "--receipt", &dotted]).unwrap_err();
        assert!(e.contains("also the receipt"), "{e}");
        let other = format!("{}/receipt.json", dir.path().display());
        junit_check(&["--junit", &same, "release", "app", "--receipt", &other]).unwrap();
    }
}
