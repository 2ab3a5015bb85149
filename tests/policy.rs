//! `ferry policy`: the generated documents parse as JSON and moto's IAM
//! accepts them in create-role / put-role-policy / put-user-policy.
//!
//! moto validates the documents' grammar (version, effects, actions,
//! resources, condition operators); it does not evaluate the trust policy.

mod common;

use common::{FERRY, Stack, assert_no_secrets, run};

const EXTRA: &str =
    "external_id = \"ops-to-prod\"\nsession_tags = true\nsource_identity = \"build-user\"\nkms_key_id = \"alias/releases\"\n";

fn policy(stack: &Stack, kind: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}{EXTRA}")).unwrap();
    let out = run(stack.ferry_command(FERRY).args(["policy", kind, "--env", "production", "--config"]).arg(&config).args(extra));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_no_secrets(stack, &out);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ferry policy {kind} is not JSON ({e}):\n{}", out.stdout))
}

#[test]
fn generated_policies_are_accepted_by_iam() {
    let stack = Stack::start();
    let trust = policy(
        &stack,
        "trust",
        &["--principal", "arn:aws:iam::111111111111:user/jenkins", "--principal", "arn:aws:iam::111111111111:role/Ops"],
    );
    let deploy = policy(&stack, "deploy", &[]);
    let jenkins = policy(&stack, "jenkins", &[]);

    let principals = &trust["Statement"][0]["Principal"]["AWS"];
    assert_eq!(principals.as_array().map(Vec::len), Some(2), "principals are one array: {trust}");
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], "ops-to-prod");
    assert_eq!(jenkins["Statement"][0]["Resource"], stack.role_arn());

    common::allow_unauthenticated_calls(&stack, 3);
    let iam = stack.iam_as_prod();
    stack.block_on(async {
        let created = iam.create_role().role_name("FerryGenerated").assume_role_policy_document(trust.to_string()).send().await;
        accepted(created, "create-role with the trust policy");
        for (name, doc) in [("ferry-deploy", &deploy), ("ferry-jenkins", &jenkins)] {
            let put =
                iam.put_role_policy().role_name("FerryGenerated").policy_name(name).policy_document(doc.to_string()).send().await;
            accepted(put, &format!("put-role-policy {name}"));
        }
    });
}

fn accepted<T, E: std::error::Error>(result: Result<T, E>, what: &str) {
    if let Err(e) = result {
        panic!("IAM refused {what}: {}", aws_smithy_types::error::display::DisplayErrorContext(e));
    }
}

#[test]
fn trust_without_a_principal_names_the_caller_and_says_so() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let out = run(stack.ferry_command(FERRY).args(["policy", "trust", "--env", "production", "--config"]).arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["Statement"][0]["Principal"]["AWS"], serde_json::json!(["arn:aws:iam::111111111111:user/jenkins"]));
    assert!(out.stderr.contains("--principal"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

/// Every integration test runs ferry under exactly what `ferry policy
/// deploy` generates (tests/stack attaches it): shown here by the deployer
/// session being refused what that document does not grant, by moto for S3
/// and by the emulator for CodeDeploy, while the same calls inside it pass.
#[test]
fn the_stack_holds_the_deployer_to_the_generated_policy() {
    let stack = Stack::start();
    let (s3, cd) = (stack.s3_as_deployer(), stack.codedeploy_as_deployer());
    stack.block_on(async {
        let key = format!("{}/{}/x.zip", ferry_test_stack::PREFIX, stack.application());
        let inside = s3.put_object().bucket(stack.bucket()).key(&key).body(b"x".to_vec().into()).send().await;
        assert!(inside.is_ok(), "a release key is the deployer's to write: {inside:?}");
        let outside = s3.put_object().bucket(stack.bucket()).key("elsewhere/x.zip").body(b"x".to_vec().into()).send().await;
        let code = outside.as_ref().err().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).map(String::from);
        assert_eq!(code.as_deref(), Some("AccessDenied"), "outside the prefix: {outside:?}");
        let policy = s3.get_bucket_policy().bucket(stack.bucket()).send().await;
        assert!(policy.is_err(), "s3:GetBucketPolicy is not granted");

        let group = cd
            .get_deployment_group()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .send()
            .await;
        assert!(group.is_ok(), "the group is the deployer's to read: {group:?}");
        let delete = cd.delete_application().application_name(stack.application()).send().await;
        let code = delete.as_ref().err().and_then(|e| aws_sdk_codedeploy::error::ProvideErrorMetadata::code(e)).map(String::from);
        assert_eq!(code.as_deref(), Some("AccessDeniedException"), "codedeploy:DeleteApplication: {delete:?}");
    });
    // The inspector the tests arrange things with is not held to it.
    let listed = stack.block_on(stack.s3_as_prod().get_bucket_policy().bucket(stack.bucket()).send());
    let code = listed.as_ref().err().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).map(String::from);
    assert_ne!(code.as_deref(), Some("AccessDenied"), "{listed:?}");
}
