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
    if let Some(foreign) = not_aws(err) {
        return format!("HTTP {} with {}, not an AWS answer (no AWS error code or request id)", foreign.status, foreign.body);
    }
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

/// An HTTP answer that did not come from AWS: an error status with neither
/// an AWS error code nor an AWS request id (a proxy's HTML 403, a load
/// balancer's 502 with an empty body). AWS labels every error it sends, so
/// such an answer says nothing about trust policies or permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAws {
    /// The HTTP status that came back.
    pub status: u16,
    /// What the body was: "an HTML page", "an empty body", ….
    pub body: &'static str,
}

impl NotAws {
    /// One sentence for `service`'s call (`STS`, `S3`, `CodeDeploy`): the
    /// status, what came back, and the proxy and endpoint variables in
    /// effect (`endpoint_var` is the service's own, e.g.
    /// `AWS_ENDPOINT_URL_STS`). Proxy credentials are never shown.
    pub fn describe(&self, service: &str, endpoint_var: &str) -> String {
        format!(
            "the answer to the {service} call did not come from AWS: HTTP {} with {}, without AWS's error code or request id, so a proxy, \
             firewall or wrong endpoint between this agent and AWS answered instead (AWS did not refuse anything: this is \
             not a trust-policy or permission problem). {} Fix the proxy (or NO_PROXY) so it lets this agent reach AWS, or \
             point the endpoint variable at AWS",
            self.status,
            self.body,
            settings(endpoint_var),
        )
    }
}

/// The proxy and endpoint variables set in this process, for [`NotAws`]:
/// "Set here: HTTPS_PROXY=http://proxy:3128." or a sentence saying none is.
fn settings(endpoint_var: &str) -> String {
    let names = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "NO_PROXY",
        "no_proxy",
        "AWS_ENDPOINT_URL",
        endpoint_var,
    ];
    let mut set: Vec<String> = Vec::new();
    for name in names {
        if let Ok(v) = std::env::var(name)
            && !v.is_empty()
            && !set.iter().any(|s| s.starts_with(&format!("{name}=")))
        {
            set.push(format!("{name}={}", without_userinfo(&v)));
        }
    }
    if set.is_empty() {
        format!("None of HTTPS_PROXY, HTTP_PROXY, NO_PROXY, AWS_ENDPOINT_URL or {endpoint_var} is set here.")
    } else {
        format!("Set here: {}.", set.join(", "))
    }
}

/// `scheme://host…` without a `user:password@` part: proxy URLs may carry credentials.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host_start = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..host_start].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    if scheme.is_empty() { rest.to_string() } else { format!("{scheme}://{rest}") }
}

/// Whether `err` is an answer that did not come from AWS (see [`NotAws`]).
pub fn not_aws<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Option<NotAws>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
    R: 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    if let SdkError::ServiceError(ctx) = err
        && ctx.err().code().is_some()
    {
        return None;
    }
    let raw = err.raw_response()?;
    let raw = (raw as &dyn std::any::Any).downcast_ref::<aws_smithy_runtime_api::http::Response>()?;
    foreign_response(raw)
}

/// The response half of [`not_aws`]: an error status, no AWS request id.
fn foreign_response(raw: &aws_smithy_runtime_api::http::Response) -> Option<NotAws> {
    let status = raw.status().as_u16();
    if status < 400 {
        return None;
    }
    let headers = raw.headers();
    if ["x-amzn-requestid", "x-amz-request-id", "x-amz-id-2"].iter().any(|h| headers.get(*h).is_some()) {
        return None;
    }
    let content_type = headers.get("content-type").unwrap_or("").to_ascii_lowercase();
    let bytes = raw.body().bytes().unwrap_or(&[]);
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        "an empty body"
    } else if content_type.contains("html") || bytes.windows(5).any(|w| w.eq_ignore_ascii_case(b"<html")) {
        "an HTML page"
    } else {
        "a body that is not an AWS error"
    };
    Some(NotAws { status, body })
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

    fn response(status: u16, content_type: Option<&str>, body: &str) -> aws_smithy_runtime_api::http::Response {
        let mut r = aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(body.to_string()),
        );
        if let Some(ct) = content_type {
            r.headers_mut().insert("content-type", ct.to_string());
        }
        r
    }

    #[test]
    fn a_proxy_page_or_an_empty_502_is_not_aws_but_a_labelled_error_is() {
        let html = foreign_response(&response(403, Some("text/html"), "<html><body>Access denied by proxy</body></html>"));
        assert_eq!(html, Some(NotAws { status: 403, body: "an HTML page" }));
        assert_eq!(foreign_response(&response(502, None, "")), Some(NotAws { status: 502, body: "an empty body" }));
        let mut aws = response(403, Some("text/xml"), "<ErrorResponse/>");
        aws.headers_mut().insert("x-amzn-RequestId", "r-1");
        assert_eq!(foreign_response(&aws), None);
        assert_eq!(foreign_response(&response(200, Some("text/html"), "<html/>")), None);
    }

    #[test]
    fn proxy_credentials_are_cut_from_the_settings_shown() {
        assert_eq!(without_userinfo("http://user:s3cret@proxy:3128/"), "http://proxy:3128/");
        assert_eq!(without_userinfo("proxy:3128"), "proxy:3128");
        assert_eq!(without_userinfo("http://127.0.0.1:9/a@b"), "http://127.0.0.1:9/a@b");
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
