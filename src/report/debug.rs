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
    use crate::report::tests::Buf;

    /// What the `--debug` filter lets through, for events sent under `targets`.
    fn shown(events: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::builder().parse_lossy(DIRECTIVES))
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        buf.text()
    }

    #[test]
    fn signing_and_wire_crates_log_nothing_even_at_error() {
        let text = shown(|| {
            tracing::error!(target: "aws_sigv4", "canonical request");
            tracing::error!(target: "hyper", "wire bytes");
            tracing::error!(target: "hyper_util", "pool");
            tracing::error!(target: "rustls", "handshake");
            tracing::error!(target: "h2", "frame");
        });
        assert!(text.is_empty(), "{text}");
    }

    #[test]
    fn sdk_requests_show_at_debug_but_never_at_trace() {
        let text = shown(|| {
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "sending request");
            tracing::debug!(target: "ferry::upload", "part 3");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "whole response body");
            tracing::trace!(target: "ferry::upload", "trace detail");
        });
        assert!(text.contains("sending request") && text.contains("part 3"), "{text}");
        assert!(!text.contains("whole response body") && !text.contains("trace detail"), "{text}");
    }
}
