//! The stack proves its own promises: the jenkins keys alone cannot touch the
//! bucket, the assumed role can, and the emulator knows the deployment group.

use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use ferry_test_stack::{Stack, StackOptions};

#[test]
fn accounts_are_separated_and_the_emulator_is_ready() {
    let t = Instant::now();
    let stack = Stack::start();
    eprintln!("Stack::start_with took {:?}", t.elapsed());

    stack.block_on(async {
        // Operations keys have no S3 rights at all.
        let denied = stack
            .s3_as_ops()
            .put_object()
            .bucket(stack.bucket())
            .key("releases/nope.zip")
            .body(ByteStream::from_static(b"nope"))
            .send()
            .await
            .expect_err("jenkins' own keys must not write to the production bucket");
        let code = denied.as_service_error().and_then(|e| e.meta().code()).map(str::to_owned);
        assert_eq!(code.as_deref(), Some("AccessDenied"), "{denied:?}");

        // The deployer role can write and read back.
        let prod = stack.s3_as_prod();
        prod.put_object()
            .bucket(stack.bucket())
            .key("releases/hello.zip")
            .body(ByteStream::from_static(b"bundle"))
            .send()
            .await
            .expect("deployer role puts");
        let got = prod.get_object().bucket(stack.bucket()).key("releases/hello.zip").send().await.expect("deployer role gets");
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"bundle");

        // The source identity is the jenkins user in Operations.
        let me = stack.sts_as_ops().get_caller_identity().send().await.expect("get-caller-identity");
        assert_eq!(me.account(), Some("111111111111"));
        assert_eq!(me.arn(), Some("arn:aws:iam::111111111111:user/jenkins"));

        let group = stack
            .codedeploy()
            .get_deployment_group()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .send()
            .await
            .expect("the emulator knows the deployment group");
        let info = group.deployment_group_info().expect("group info");
        assert_eq!(info.deployment_group_name(), Some(stack.deployment_group()));
    });
}

#[test]
fn ferry_command_and_config_point_at_the_stack() {
    let stack = Stack::start_with(StackOptions { external_id: Some("ferry-ext".into()), ..StackOptions::default() });
    let cmd = stack.ferry_command("/bin/true");
    let envs: Vec<(String, String)> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned()).unwrap_or_default()))
        .collect();
    let get = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ACCESS_KEY_ID"), Some(stack.ops_access_key()));
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(stack.moto_endpoint()));
    assert_eq!(get("AWS_ENDPOINT_URL_CODEDEPLOY"), Some(stack.codedeploy_endpoint()));
    assert_eq!(get("NO_COLOR"), None);
    assert!(!std::path::Path::new(get("AWS_CONFIG_FILE").unwrap()).exists());
    assert!(stack.ferry_command("/bin/true").status().unwrap().success());

    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(stack.write_config(dir.path(), "prod")).unwrap();
    assert!(toml.starts_with("[env.prod]\n"), "{toml}");
    assert!(toml.contains("role_arn = \"arn:aws:iam::222222222222:role/CA_ServiceDeployer\"\n"));
    assert!(toml.contains("external_id = \"ferry-ext\"\n"));
    assert!(toml.contains("prefix = \"releases\"\n"));

    let secrets = stack.secrets();
    assert!(secrets.iter().any(|s| s == stack.ops_secret_key()));
    assert!(secrets.iter().all(|s| !s.is_empty()));
}

/// Async tests own stacks too: starting and dropping one inside a runtime
/// must neither panic nor block that runtime.
#[tokio::test]
async fn starts_and_drops_inside_an_async_test() {
    let stack = Stack::start();
    let buckets = stack.s3_as_prod().list_objects_v2().bucket(stack.bucket()).send().await.expect("list as deployer");
    assert_eq!(buckets.key_count(), Some(0));
    drop(stack);
}
