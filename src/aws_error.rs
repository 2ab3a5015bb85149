//! AWS SDK errors as sentences: what the service said, or why it could not be
//! reached. Data layer: stages use these to build their own error enums.

use std::error::Error as StdError;
use std::fmt;

/// Renders an AWS SDK error as one readable sentence: the service's error code
/// and message when the service answered, the connection problem when it did
/// not.
///
/// The SDK's own `Display` for `SdkError` says only "service error"; the
/// useful part sits in the source chain.
pub fn describe_sdk_error<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + StdError + 'static,
    R: fmt::Debug + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => chain(e),
            }
        }
        other => chain(other),
    }
}

/// Whether an SDK error means the endpoint could not be reached at all
/// (connection refused, DNS, timeout) rather than an answer from AWS.
pub fn is_unreachable<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool {
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout(),
        SdkError::TimeoutError(_) => true,
        _ => false,
    }
}

/// Joins an error and its sources with ": ", skipping repeats, so nested
/// SDK errors read as one sentence.
///
/// Not `aws_smithy_types::error::display::DisplayErrorContext`: that one
/// also appends the error's `Debug` form (the raw response with its
/// headers), which is neither one sentence nor something a Jenkins log
/// should carry.
pub fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Finds the first error of type `T` in `err`'s source chain.
pub fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_sources_without_repeating_them() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(chain(&e), "outer: connection refused");
    }
}
