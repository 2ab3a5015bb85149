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
            let said = match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => chain(e),
            };
            let meta = e.meta();
            match request_id_marker(meta.extra("aws_request_id"), meta.extra("s3_extended_request_id")) {
                Some(marker) => format!("{said} {marker}"),
                None => said,
            }
        }
        other => chain(other),
    }
}

/// Opens the marker that [`describe_sdk_error`] puts after AWS's words.
const MARK_OPEN: &str = "[AWS request id ";

/// `[AWS request id R]` (with S3's extended id when there is one): what
/// AWS support asks for first. Kept beside the message it belongs to until
/// the error is printed, when [`request_ids_last`] moves it to the end.
fn request_id_marker(id: Option<&str>, extended: Option<&str>) -> Option<String> {
    match (id.filter(|i| !i.is_empty()), extended.filter(|x| !x.is_empty())) {
        (Some(id), Some(x)) => Some(format!("{MARK_OPEN}{id}, extended {x}]")),
        (Some(id), None) => Some(format!("{MARK_OPEN}{id}]")),
        (None, Some(x)) => Some(format!("[AWS extended request id {x}]")),
        (None, None) => None,
    }
}

/// An error message with the request ids AWS answered with moved to its
/// end, as one sentence: "… AWS request id: R." Messages name AWS's words
/// mid-sentence, before ferry's remedy; the id is for AWS support, so it
/// goes last, where it is found and copied whole.
pub fn request_ids_last(message: &str) -> String {
    let mut rest = message.to_string();
    let mut ids = Vec::new();
    while let Some(start) = rest.find(MARK_OPEN).or_else(|| rest.find("[AWS extended request id ")) {
        let Some(len) = rest[start..].find(']') else { break };
        let marker = rest[start..start + len + 1].to_string();
        let inner = marker
            .trim_end_matches(']')
            .strip_prefix(MARK_OPEN)
            .map(String::from)
            .unwrap_or_else(|| marker.trim_end_matches(']').replacen("[AWS extended request id ", "extended ", 1));
        if !ids.contains(&inner) {
            ids.push(inner);
        }
        // The marker and the space before it.
        let from = if rest[..start].ends_with(' ') { start - 1 } else { start };
        rest.replace_range(from..start + len + 1, "");
    }
    if ids.is_empty() {
        return rest;
    }
    let rest = rest.trim_end();
    let sep = if rest.ends_with(['.', '!', '?']) { " " } else { ". " };
    let label = if ids.len() == 1 { "AWS request id" } else { "AWS request ids" };
    format!("{rest}{sep}{label}: {}.", ids.join("; "))
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
    fn request_ids_move_to_the_end_of_the_message_once_each() {
        let said = format!("AccessDenied: nope {}", request_id_marker(Some("R1"), Some("X1")).unwrap());
        let msg = format!("cannot read s3://b/k: S3 said: {said}. Grant s3:GetObject to the role.");
        assert_eq!(
            request_ids_last(&msg),
            "cannot read s3://b/k: S3 said: AccessDenied: nope. Grant s3:GetObject to the role. AWS request id: R1, extended X1."
        );
        let twice = format!("a {m}: b {m}", m = request_id_marker(Some("R2"), None).unwrap());
        assert_eq!(request_ids_last(&twice), "a: b. AWS request id: R2.");
        assert_eq!(request_ids_last("no ids here."), "no ids here.");
    }

    #[test]
    fn chain_joins_sources_without_repeating_them() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(chain(&e), "outer: connection refused");
    }
}
