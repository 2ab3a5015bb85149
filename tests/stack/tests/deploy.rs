//! One deployment through the whole stack, the way ferry will run it: the
//! deployer uploads, the emulator's instances fetch with the agent's keys
//! (only allowed to read) while moto enforces IAM.

use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::{
    BundleType, DeploymentInfo, DeploymentStatus, RevisionLocation, RevisionLocationType, S3Location,
};
use aws_sdk_s3::primitives::ByteStream;
use ferry_test_stack::{Stack, StackOptions};

const APPSPEC: &str = "\
version: 0.0
os: linux
files:
  - source: index.html
    destination: /opt/hello
hooks:
  ValidateService:
    - location: validate.sh
";

const VALIDATE: &str = "#!/bin/bash\nset -e\ntest -f \"${EMULATOR_INSTANCE_ROOT:-}/opt/hello/index.html\"\n";

fn bundle() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let file = zip::write::SimpleFileOptions::default();
    for (name, body, mode) in
        [("appspec.yml", APPSPEC, 0o644), ("index.html", "hello\n", 0o644), ("validate.sh", VALIDATE, 0o755)]
    {
        zip.start_file(name, file.unix_permissions(mode)).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Uploads the bundle as the deployer, deploys it, and waits for the end.
fn deploy_and_wait(stack: &Stack) -> DeploymentInfo {
    let key = "releases/hello-1.zip";
    stack.block_on(async {
        stack
            .s3_as_prod()
            .put_object()
            .bucket(stack.bucket())
            .key(key)
            .body(ByteStream::from(bundle()))
            .send()
            .await
            .expect("deployer uploads");

        let codedeploy = stack.codedeploy();
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(S3Location::builder().bucket(stack.bucket()).key(key).bundle_type(BundleType::Zip).build())
            .build();
        let id = codedeploy
            .create_deployment()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .revision(revision)
            .send()
            .await
            .expect("create deployment")
            .deployment_id
            .expect("deployment id");

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = codedeploy
                .get_deployment()
                .deployment_id(&id)
                .send()
                .await
                .expect("get deployment")
                .deployment_info
                .expect("info");
            match info.status() {
                Some(DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped) => break info,
                _ if Instant::now() > deadline => panic!("deployment still {:?} after 30 s", info.status()),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
}

#[test]
fn a_deployment_fetches_with_the_agent_keys_and_succeeds_on_every_instance() {
    let stack = Stack::start_with(StackOptions { instances: 2, ..StackOptions::default() });
    let info = deploy_and_wait(&stack);
    assert_eq!(
        info.status(),
        Some(&DeploymentStatus::Succeeded),
        "{:?}\nmoto log: {}",
        info.error_information(),
        stack.moto_log().display()
    );
    assert_eq!(info.deployment_overview().map(|o| o.succeeded()), Some(2), "both instances of the group");
}

#[test]
fn with_localstack_s3_the_bundle_is_put_and_fetched_there() {
    let stack = Stack::start_with(StackOptions { localstack_s3: true, ..StackOptions::default() });
    assert_ne!(stack.s3_endpoint(), stack.moto_endpoint());
    let endpoint_for_ferry = stack.ferry_env().into_iter().find(|(k, _)| k == "AWS_ENDPOINT_URL_S3").map(|(_, v)| v);
    assert_eq!(endpoint_for_ferry.as_deref(), Some(stack.s3_endpoint()), "ferry is pointed at LocalStack's S3");
    // The bundle goes to LocalStack alone, so the instances can only have
    // fetched it from there.
    let info = deploy_and_wait(&stack);
    assert_eq!(info.status(), Some(&DeploymentStatus::Succeeded), "{:?}", info.error_information());
}

#[test]
fn group_tags_and_auto_rollback_reach_the_emulator() {
    let stack = Stack::start_with(StackOptions {
        group_tags: vec![("emulator:fail-event".into(), "ValidateService".into())],
        auto_rollback: true,
        ..StackOptions::default()
    });
    let info = deploy_and_wait(&stack);
    assert_eq!(info.status(), Some(&DeploymentStatus::Failed));
    // A first deployment has nothing to roll back to; the group must still
    // say rollback is on.
    let group = stack.block_on(
        stack
            .codedeploy()
            .get_deployment_group()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .send(),
    );
    let group = group.expect("group").deployment_group_info.expect("info");
    assert_eq!(group.auto_rollback_configuration().map(|c| c.enabled()), Some(true));
}
