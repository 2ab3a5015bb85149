//! The wire framing of CodeDeploy's JSON 1.1 protocol: request routing by
//! `X-Amz-Target`, the authentication header check and the error body shape
//! the AWS SDKs map onto typed exceptions.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The JSON 1.1 content type every request and response carries.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The target prefix of every CodeDeploy operation.
pub const TARGET_PREFIX: &str = "CodeDeploy_20141006.";

/// The header carrying each answer's request id (AWS spells it
/// `x-amzn-RequestId`; header names are case-insensitive, and hyper sends
/// them in lower case).
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// A service error: its exception name (the SDK's error type) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The exception name, e.g. `DeploymentDoesNotExistException`.
    pub code: &'static str,
    /// The human readable message.
    pub message: String,
}

impl ApiError {
    /// An error with the given exception name and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// What an operation handler returns.
pub type OpResult = Result<Value, ApiError>;

impl ApiError {
    /// The JSON body of this error's answer.
    pub fn body(&self) -> Value {
        serde_json::json!({ "__type": self.code, "message": self.message })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::BAD_REQUEST, self.body().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        response
    }
}

/// A successful response carrying `body`; members that are `null` are
/// dropped, as the service omits absent members.
pub fn ok_response(mut body: Value) -> Response {
    strip_nulls(&mut body);
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Checks the framing of a request and returns the operation name it targets.
///
/// The SigV4 signature is not verified: only its presence is, so a client that
/// forgot to sign (or has no credentials) fails the way it would against AWS.
pub fn operation_of(headers: &HeaderMap) -> Result<String, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 ") || !auth.contains("Credential=") {
        return Err(ApiError::new("MissingAuthenticationTokenException", "Missing Authentication Token"));
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    match target.strip_prefix(TARGET_PREFIX) {
        Some(op) if !op.is_empty() => Ok(op.to_string()),
        _ => Err(ApiError::new("UnknownOperationException", format!("Unknown operation target '{target}'"))),
    }
}

/// Parses the request body; an empty body is an empty object, as AWS accepts.
pub fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", format!("Malformed JSON body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::new("SerializationException", "Request body must be a JSON object"));
    }
    Ok(value)
}

/// Deserialises an operation's input, reporting type mismatches the way the
/// service does (a `SerializationException`).
pub fn input<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::new("SerializationException", format!("Invalid request: {e}")))
}

/// Returns `Some(value)` when it is present and non-empty, else the given
/// "required" error, matching the service's `*RequiredException`s.
pub fn required<'a>(value: &'a Option<String>, code: &'static str, what: &str) -> Result<&'a str, ApiError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::new(code, format!("{what} must be specified."))),
    }
}

/// Drops `null` members, as the service omits absent members.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
