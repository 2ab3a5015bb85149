//! `ferry bundle <DIR> --out <FILE>`: build the reproducible bundle alone,
//! with the same checks a release runs, and print its SHA-256.

use crate::bundle;
use crate::cli::BundleArgs;
use crate::cmd::error::Error;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;

/// Writes the bundle and reports it; the SHA-256 goes to stdout.
pub async fn run(args: &BundleArgs, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let kind = args.bundle_type.or_else(|| bundle::BundleType::from_path(&args.out)).unwrap_or(bundle::BundleType::Zip);
    if !args.dir.is_dir() {
        return Err(bundle::BundleError::Missing { path: args.dir.clone() }.into());
    }
    if args.out.as_os_str() == "-" {
        // stdout is the bundle: the events went to stderr (see
        // `Command::stdout_is_product`), and the SHA-256 with them.
        let mut out = std::io::stdout().lock();
        let (size, sha256) = bundle::write_stream(&args.dir, kind, &mut out)?;
        reporter.report(&Event::BundleReady { path: "-".into(), bundle_type: kind, size, sha256, built: true, cached: false });
        return Ok(ExitCode::Success);
    }
    let (size, sha256) = bundle::write_to(&args.dir, kind, &args.out)?;
    reporter.report(&Event::BundleReady {
        path: args.out.display().to_string(),
        bundle_type: kind,
        size,
        sha256: sha256.clone(),
        built: true,
        cached: false,
    });
    reporter.report(&Event::BundleWritten { path: args.out.display().to_string(), sha256 });
    Ok(ExitCode::Success)
}
