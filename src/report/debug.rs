//! `--debug`: the AWS SDK's own tracing, on stderr, at debug level.
//!
//! The SDK redacts what it knows to be sensitive (the `authorization` and
//! `x-amz-security-token` headers, credential fields; checked here even at
//! trace level). ferry does not lean on that alone: trace level, which logs
//! whole requests and responses, and the signing and wire-level crates stay
//! off, and `RUST_LOG` is deliberately not read, so no environment setting
//! can widen what a Jenkins log receives. A test scans `--debug` output for
//! every secret the test stack issued.

use tracing_subscriber::EnvFilter;

/// What `--debug` shows. Order matters only for readability; the most
/// specific directive wins.
pub const DIRECTIVES: &str = "warn,ferry=debug,aws_config=debug,aws_smithy_runtime=debug,\
aws_smithy_runtime_api=debug,aws_sdk_sts=debug,aws_sdk_s3=debug,aws_sdk_codedeploy=debug,\
aws_smithy_http_client=info,aws_sigv4=off,hyper=off,hyper_util=off,h2=off,rustls=off";

/// Installs the debug subscriber (once; later calls do nothing).
pub fn init() {
    let filter = EnvFilter::builder().parse_lossy(DIRECTIVES);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && !crate::jenkins::BuildEnv::current().no_color
        && !crate::jenkins::BuildEnv::current().in_ci();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(true)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_and_wire_logs_are_always_off() {
        for target in ["aws_sigv4=off", "hyper=off", "hyper_util=off", "h2=off"] {
            assert!(DIRECTIVES.contains(target), "{target}");
        }
        // No trace level anywhere: that is where request and response bodies go.
        assert!(!DIRECTIVES.contains("trace"));
    }
}
