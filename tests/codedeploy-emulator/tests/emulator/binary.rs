//! The binary: the one stdout line scripts wait for, and a working endpoint.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use aws_sdk_codedeploy::error::ProvideErrorMetadata;

#[tokio::test]
async fn binary_prints_its_endpoint_and_serves_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_codedeploy-emulator"))
        .args(["--port", "0", "--step-delay-ms", "1", "--rate-limit", "GetApplication=0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("codedeploy-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version(aws_sdk_codedeploy::config::BehaviorVersion::latest())
        .region(aws_sdk_codedeploy::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_codedeploy::config::Credentials::new("a", "b", None, None, "t"))
        .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
        .build();
    let cd = aws_sdk_codedeploy::Client::from_conf(conf);
    let result = cd.create_application().application_name("shop").send().await;
    let throttled = cd.get_application().application_name("shop").send().await;
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
    assert_eq!(throttled.unwrap_err().code(), Some("ThrottlingException"));
}

#[test]
fn binary_rejects_unknown_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_codedeploy-emulator")).arg("--bogus").output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout, so scripts don't mistake it for ready");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag --bogus"));
}
