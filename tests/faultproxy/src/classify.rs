//! Names the AWS operation a request is for, so rules can target e.g.
//! `PutObject` or `GetDeployment` and the stats can say what was called.

use hyper::header::HeaderMap;
use hyper::{Method, Uri};

/// What [`operation`] returns for a form POST before its body is read
/// (STS and IAM put the action in the body).
pub const FORM_POST: &str = "form-post";

/// The operation name: from `X-Amz-Target` (JSON protocols such as
/// CodeDeploy), from `Action=` in a form body (STS, IAM), else S3's REST
/// shape (method and query).
pub fn operation(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form && method == Method::POST {
        if body.is_empty() {
            return FORM_POST.to_string();
        }
        let text = String::from_utf8_lossy(body);
        if let Some(action) = text.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            return action.to_string();
        }
    }
    s3_operation(method, uri)
}

fn s3_operation(method: &Method, uri: &Uri) -> String {
    let query = uri.query().unwrap_or("");
    let has = |k: &str| query.split('&').any(|kv| kv == k || kv.starts_with(&format!("{k}=")));
    // Path-style: /bucket or /bucket/key... (the SDK sends bucket-level
    // calls such as ListMultipartUploads as `/bucket/?uploads`).
    let has_key = uri.path().trim_start_matches('/').split_once('/').is_some_and(|(_, key)| !key.is_empty());
    let op = match (method.as_str(), has("uploads"), has("uploadId"), has_key) {
        ("POST", true, _, _) => "CreateMultipartUpload",
        ("PUT", _, true, _) => "UploadPart",
        ("POST", _, true, _) => "CompleteMultipartUpload",
        ("DELETE", _, true, _) => "AbortMultipartUpload",
        ("GET", true, _, false) => "ListMultipartUploads",
        ("GET", _, true, _) => "ListParts",
        ("PUT", _, _, true) => "PutObject",
        ("HEAD", _, _, true) => "HeadObject",
        ("GET", _, _, true) => "GetObject",
        ("DELETE", _, _, true) => "DeleteObject",
        ("HEAD", _, _, false) => "HeadBucket",
        ("GET", _, _, false) => "ListObjects",
        _ => "other",
    };
    op.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, uri: &str, headers: &[(&'static str, &'static str)], body: &str) -> String {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        operation(&method, &uri.parse().unwrap(), &map, body.as_bytes())
    }

    #[test]
    fn names_json_form_and_s3_operations() {
        assert_eq!(op(Method::POST, "/", &[("x-amz-target", "CodeDeploy_20141006.GetDeployment")], "{}"), "GetDeployment");
        let form = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        assert_eq!(op(Method::POST, "/", &form, "Action=AssumeRole&Version=2011-06-15"), "AssumeRole");
        assert_eq!(op(Method::POST, "/", &form, ""), FORM_POST);
        assert_eq!(op(Method::PUT, "/b/releases/web/x.zip?x-id=PutObject", &[], ""), "PutObject");
        assert_eq!(op(Method::PUT, "/b/k?partNumber=2&uploadId=abc", &[], ""), "UploadPart");
        assert_eq!(op(Method::POST, "/b/k?uploads", &[], ""), "CreateMultipartUpload");
        assert_eq!(op(Method::HEAD, "/b/k", &[], ""), "HeadObject");
        assert_eq!(op(Method::GET, "/b?uploads", &[], ""), "ListMultipartUploads");
        assert_eq!(op(Method::GET, "/b/?uploads&prefix=releases/x.zip", &[], ""), "ListMultipartUploads");
    }
}
