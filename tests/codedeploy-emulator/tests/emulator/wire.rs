//! The JSON 1.1 framing itself, checked with raw HTTP where the SDK would
//! hide the detail.

use std::io::{Read, Write};
use std::net::TcpStream;

use codedeploy_emulator::Emulator;

use crate::common::config;

/// Sends one POST and returns (status line, headers+body text).
fn post(emulator: &Emulator, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let addr = emulator.endpoint().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    let mut request = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response)
}

const AUTH: (&str, &str) = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=abc",
);
const JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.1");

#[test]
fn unsigned_request_is_rejected_with_missing_authentication_token() {
    let emulator = Emulator::start(config()).unwrap();
    let (status, text) = post(&emulator, &[JSON, ("X-Amz-Target", "CodeDeploy_20141006.ListApplications")], "{}");
    assert_eq!(status, 400);
    assert!(text.contains(r#""__type":"MissingAuthenticationTokenException""#), "{text}");
    assert!(text.to_ascii_lowercase().contains("x-amzn-errortype: missingauthenticationtokenexception"), "{text}");
}

#[test]
fn unknown_operation_is_rejected() {
    let emulator = Emulator::start(config()).unwrap();
    let (status, text) = post(&emulator, &[JSON, AUTH, ("X-Amz-Target", "CodeDeploy_20141006.FlyToTheMoon")], "{}");
    assert_eq!(status, 400);
    assert!(text.contains("UnknownOperationException"), "{text}");
    let (status, text) = post(&emulator, &[JSON, AUTH, ("X-Amz-Target", "Route53_20130401.ListHostedZones")], "{}");
    assert_eq!(status, 400);
    assert!(text.contains("UnknownOperationException"), "{text}");
}

#[test]
fn responses_are_json_1_1_and_omit_absent_members() {
    let emulator = Emulator::start(config()).unwrap();
    let (status, text) = post(&emulator, &[JSON, AUTH, ("X-Amz-Target", "CodeDeploy_20141006.ListApplications")], "{}");
    assert_eq!(status, 200, "{text}");
    assert!(text.to_ascii_lowercase().contains("content-type: application/x-amz-json-1.1"), "{text}");
    assert!(text.ends_with(r#"{"applications":[]}"#), "{text}");
}

#[test]
fn malformed_json_is_a_serialization_exception() {
    let emulator = Emulator::start(config()).unwrap();
    let (status, text) = post(&emulator, &[JSON, AUTH, ("X-Amz-Target", "CodeDeploy_20141006.GetApplication")], "{nope");
    assert_eq!(status, 400);
    assert!(text.contains("SerializationException"), "{text}");
}

#[tokio::test]
async fn requests_over_an_operations_rate_limit_are_throttled() {
    let mut cfg = config();
    cfg.rate_limits.insert("ListApplications".into(), 1.0);
    let emulator = Emulator::start(cfg).unwrap();
    let cd = crate::common::client(&emulator);
    cd.list_applications().send().await.unwrap();
    let throttled = cd.list_applications().send().await.unwrap_err();
    use aws_sdk_codedeploy::error::ProvideErrorMetadata;
    assert_eq!(throttled.code(), Some("ThrottlingException"));
    // Other operations have their own (here unlimited) budget.
    cd.list_deployment_configs().send().await.unwrap();
    cd.list_deployment_configs().send().await.unwrap();
    // The budget refills: a later call goes through (polled, not slept).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while cd.list_applications().send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the throttle never let ListApplications through again");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The value of header `name` (case-insensitive) in a raw response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn every_answer_carries_its_own_request_id_errors_too() {
    let emulator = Emulator::start(config()).unwrap();
    let target = |op: &'static str| ("X-Amz-Target", op);
    let answers = [
        post(&emulator, &[JSON, AUTH, target("CodeDeploy_20141006.ListApplications")], "{}"),
        post(&emulator, &[JSON, AUTH, target("CodeDeploy_20141006.GetApplication")], r#"{"applicationName":"nope"}"#),
        post(&emulator, &[JSON, target("CodeDeploy_20141006.ListApplications")], "{}"),
        post(&emulator, &[JSON, AUTH, target("CodeDeploy_20141006.FlyToTheMoon")], "{}"),
        post(&emulator, &[JSON, AUTH, target("CodeDeploy_20141006.GetApplication")], "{nope"),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 400, 400, 400, 400]);
    let ids: Vec<&str> = answers
        .iter()
        .map(|(_, text)| header(text, "x-amzn-RequestId").unwrap_or_else(|| panic!("no request id:\n{text}")))
        .collect();
    assert!(ids.iter().all(|id| is_uuid(id)), "{ids:?}");
    let distinct: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

#[tokio::test]
async fn the_sdk_reads_the_request_id_of_answers_and_errors() {
    use aws_sdk_codedeploy::operation::RequestId;
    let emulator = Emulator::start(config()).unwrap();
    let cd = crate::common::client(&emulator);
    let ok = cd.list_applications().send().await.unwrap();
    assert!(ok.request_id().is_some_and(is_uuid), "{:?}", ok.request_id());
    let err = cd.get_application().application_name("nope").send().await.unwrap_err();
    assert!(err.request_id().is_some_and(is_uuid), "{:?}", err.request_id());
}
