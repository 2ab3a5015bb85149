//! Hook scripts running for real, ApplicationStop from the previous revision,
//! and automatic rollback to the last good revision.

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, DeploymentCreator, DeploymentStatus, Diagnostics, LifecycleEventStatus,
};

use crate::common::{app_and_group, client, emulator_with_s3, moto, put, s3, s3_revision, wait_complete, zip_of};

const PASS: &str = "#!/bin/bash\necho \"ok from $LIFECYCLE_EVENT\"\n";

fn appspec(validate_timeout: Option<u32>) -> String {
    let timeout = validate_timeout.map(|t| format!("      timeout: {t}\n")).unwrap_or_default();
    format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/shop\nhooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n  BeforeInstall:\n    - location: scripts/env.sh\n  ValidateService:\n    - location: scripts/validate.sh\n{timeout}      runas: root\n"
    )
}

fn bundle(version: &str, validate: &str, timeout: Option<u32>) -> Vec<u8> {
    let stop =
        format!("#!/bin/bash\necho \"stopping {version} during $DEPLOYMENT_ID\" >> \"$EMULATOR_INSTANCE_ROOT/stops.log\"\n");
    let env = "#!/bin/bash\nprintf '%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$LIFECYCLE_EVENT\" \"$DEPLOYMENT_ID\" \"$APPLICATION_NAME\" \"$DEPLOYMENT_GROUP_NAME\" \"$DEPLOYMENT_GROUP_ID\" \"$PWD\" \"$BUNDLE_BUCKET\" \"$BUNDLE_KEY\" > \"$EMULATOR_INSTANCE_ROOT/env.txt\"\n";
    zip_of(&[
        ("appspec.yml", &appspec(timeout)),
        ("app/version.txt", version),
        ("scripts/stop.sh", &stop),
        ("scripts/env.sh", env),
        ("scripts/validate.sh", validate),
    ])
}

async fn deploy(cd: &Client, key: &str, rollback: bool) -> String {
    let mut req = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("releases", key, None))
        .file_exists_behavior(aws_sdk_codedeploy::types::FileExistsBehavior::Overwrite);
    if rollback {
        req = req.auto_rollback_configuration(
            AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentFailure).build(),
        );
    }
    req.send().await.unwrap().deployment_id.unwrap()
}

async fn diagnostics(cd: &Client, id: &str, event: &str) -> (LifecycleEventStatus, Option<Diagnostics>) {
    let ids = cd.list_deployment_targets().deployment_id(id).send().await.unwrap().target_ids.unwrap();
    let target = cd.get_deployment_target().deployment_id(id).target_id(&ids[0]).send().await.unwrap();
    let instance = target.deployment_target.unwrap().instance_target.unwrap();
    let e = instance.lifecycle_events().iter().find(|e| e.lifecycle_event_name.as_deref() == Some(event)).unwrap().clone();
    (e.status.unwrap(), e.diagnostics)
}

#[tokio::test]
async fn failing_validate_service_fails_the_deployment_and_rolls_back_to_the_last_good_revision() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "v1.zip", bundle("v1", PASS, None)).await;
    let broken = "#!/bin/bash\necho 'checking http://localhost/health'\necho 'health check returned 503' >&2\nexit 1\n";
    put(&s3, "releases", "v2.zip", bundle("v2", broken, None)).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;

    let good = deploy(&cd, "v1.zip", true).await;
    assert_eq!(wait_complete(&cd, &good).await.status, Some(DeploymentStatus::Succeeded));
    let bad = deploy(&cd, "v2.zip", true).await;
    let failed = wait_complete(&cd, &bad).await;
    assert_eq!(failed.status, Some(DeploymentStatus::Failed));
    assert_eq!(failed.previous_revision.unwrap().s3_location.unwrap().key.as_deref(), Some("v1.zip"));
    let (status, diag) = diagnostics(&cd, &bad, "ValidateService").await;
    assert_eq!(status, LifecycleEventStatus::Failed);
    let diag = diag.unwrap();
    assert_eq!(diag.error_code.unwrap().as_str(), "ScriptFailed");
    assert_eq!(diag.script_name.as_deref(), Some("scripts/validate.sh"));
    assert!(diag.message.unwrap().contains("exit code 1"));
    let tail = diag.log_tail.unwrap();
    assert!(tail.contains("checking http://localhost/health") && tail.contains("health check returned 503"), "{tail}");

    let rollback_id = failed.rollback_info.unwrap().rollback_deployment_id.expect("rollback created");
    let rollback = wait_complete(&cd, &rollback_id).await;
    assert_eq!(rollback.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(rollback.creator, Some(DeploymentCreator::CodeDeployRollback));
    assert_eq!(rollback.rollback_info.unwrap().rollback_triggering_deployment_id.as_deref(), Some(bad.as_str()));
    assert_eq!(rollback.revision.unwrap().s3_location.unwrap().key.as_deref(), Some("v1.zip"));

    let group = cd
        .get_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .send()
        .await
        .unwrap()
        .deployment_group_info
        .unwrap();
    assert_eq!(group.last_successful_deployment.unwrap().deployment_id, Some(rollback_id.clone()));
    assert_eq!(group.last_attempted_deployment.unwrap().deployment_id, Some(rollback_id.clone()));

    let ids = cd.list_deployment_targets().deployment_id(&rollback_id).send().await.unwrap().target_ids.unwrap();
    let root = emulator.work_dir().join("prod").join(&ids[0]);
    assert_eq!(std::fs::read_to_string(root.join("srv/shop/version.txt")).unwrap(), "v1");
    // ApplicationStop always runs the script of the last revision that installed.
    let stops = std::fs::read_to_string(root.join("stops.log")).unwrap();
    assert_eq!(stops, format!("stopping v1 during {bad}\nstopping v2 during {rollback_id}\n"));
}

#[tokio::test]
async fn without_a_previous_success_no_rollback_is_made() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "v2.zip", bundle("v2", "#!/bin/bash\nexit 3\n", None)).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let bad = deploy(&cd, "v2.zip", true).await;
    let failed = wait_complete(&cd, &bad).await;
    let info = failed.rollback_info.unwrap();
    assert!(info.rollback_deployment_id.is_none());
    assert!(info.rollback_message.unwrap().contains("no previous successful deployment"));
    let (_, diag) = diagnostics(&cd, &bad, "ValidateService").await;
    assert!(diag.unwrap().message.unwrap().contains("exit code 3"));
}

#[tokio::test]
async fn hooks_see_the_lifecycle_environment_and_run_in_the_agents_working_directory() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "v1.zip", bundle("v1", PASS, None)).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let id = deploy(&cd, "v1.zip", false).await;
    assert_eq!(wait_complete(&cd, &id).await.status, Some(DeploymentStatus::Succeeded));
    let group_id = cd
        .get_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .send()
        .await
        .unwrap()
        .deployment_group_info
        .unwrap()
        .deployment_group_id
        .unwrap();
    let ids = cd.list_deployment_targets().deployment_id(&id).send().await.unwrap().target_ids.unwrap();
    let root = emulator.work_dir().join("prod").join(&ids[0]);
    let env = std::fs::read_to_string(root.join("env.txt")).unwrap();
    let fields: Vec<&str> = env.trim().split('|').collect();
    assert_eq!(&fields[..5], ["BeforeInstall", id.as_str(), "shop", "prod", group_id.as_str()]);
    // The agent never changes directory: its own, `/` under systemd.
    assert_eq!(fields[5], "/");
    // The revision's location, as the agent exports it.
    assert_eq!(&fields[6..8], ["releases", "v1.zip"]);
    let (status, diag) = diagnostics(&cd, &id, "ValidateService").await;
    assert_eq!(status, LifecycleEventStatus::Succeeded);
    let diag = diag.unwrap();
    assert_eq!(diag.error_code.unwrap().as_str(), "Success");
    // A success reports no log; the script's output is in scripts.log.
    assert_eq!(diag.log_tail.as_deref(), Some(""));
    let log = root.join(format!("opt/codedeploy-agent/deployment-root/{group_id}/{id}/logs/scripts.log"));
    assert!(std::fs::read_to_string(log).unwrap().contains("[stdout]ok from ValidateService"));
}

#[tokio::test]
async fn a_hook_over_its_timeout_is_killed_and_reported() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "slow.zip", bundle("v1", "#!/bin/bash\necho waiting\nsleep 30\n", Some(1))).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let started = std::time::Instant::now();
    let id = deploy(&cd, "slow.zip", false).await;
    assert_eq!(wait_complete(&cd, &id).await.status, Some(DeploymentStatus::Failed));
    assert!(started.elapsed().as_secs() < 10);
    let (status, diag) = diagnostics(&cd, &id, "ValidateService").await;
    assert_eq!(status, LifecycleEventStatus::Failed);
    let diag = diag.unwrap();
    assert_eq!(diag.error_code.unwrap().as_str(), "ScriptTimedOut");
    assert!(diag.log_tail.unwrap().contains("waiting"));
}

#[tokio::test]
async fn disallow_refuses_to_overwrite_files_it_did_not_install() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "v1.zip", bundle("v1", PASS, None)).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let first = deploy(&cd, "v1.zip", false).await;
    wait_complete(&cd, &first).await;
    let ids = cd.list_deployment_targets().deployment_id(&first).send().await.unwrap().target_ids.unwrap();
    let root = emulator.work_dir().join("prod").join(&ids[0]);
    // Redeploying replaces the files the last install put there, even under DISALLOW...
    let again = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("releases", "v1.zip", None))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    assert_eq!(wait_complete(&cd, &again).await.status, Some(DeploymentStatus::Succeeded));
    // ...but not a file someone else put where the bundle wants to write.
    put(
        &s3,
        "releases",
        "v3.zip",
        zip_of(&[
            ("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - source: extra.txt\n    destination: /srv/shop\n"),
            ("extra.txt", "new"),
        ]),
    )
    .await;
    std::fs::write(root.join("srv/shop/extra.txt"), "someone else's").unwrap();
    let clash = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("releases", "v3.zip", None))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    assert_eq!(wait_complete(&cd, &clash).await.status, Some(DeploymentStatus::Failed));
    let (status, diag) = diagnostics(&cd, &clash, "Install").await;
    assert_eq!(status, LifecycleEventStatus::Failed);
    assert!(diag.unwrap().message.unwrap().contains("already exists at this location: /srv/shop/extra.txt"));
}

async fn group_with_stop_rollback(
    moto: &crate::common::Moto,
    on_request: bool,
) -> (codedeploy_emulator::Emulator, Client, String) {
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "v1.zip", bundle("v1", PASS, None)).await;
    put(&s3, "releases", "v2.zip", bundle("v2", PASS, None)).await;
    let emulator = emulator_with_s3(&moto.endpoint, |c| c.step_delay = std::time::Duration::from_millis(40));
    let cd = client(&emulator);
    cd.create_application().application_name("shop").send().await.unwrap();
    let mut group = cd
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .tags(aws_sdk_codedeploy::types::Tag::builder().key("emulator:instances").value("2").build());
    if on_request {
        group = group.auto_rollback_configuration(
            AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentStopOnRequest).build(),
        );
    }
    group.send().await.unwrap();
    let good = deploy(&cd, "v1.zip", false).await;
    assert_eq!(wait_complete(&cd, &good).await.status, Some(DeploymentStatus::Succeeded));
    (emulator, cd, good)
}

#[tokio::test]
async fn stopping_with_rollback_enabled_restores_the_last_good_revision() {
    let moto = moto();
    let (_emulator, cd, good) = group_with_stop_rollback(&moto, false).await;
    let bad = deploy(&cd, "v2.zip", false).await;
    cd.stop_deployment().deployment_id(&bad).auto_rollback_enabled(true).send().await.unwrap();
    let stopped = wait_complete(&cd, &bad).await;
    assert_eq!(stopped.status, Some(DeploymentStatus::Stopped));
    assert_eq!(stopped.previous_revision.unwrap().s3_location.unwrap().key.as_deref(), Some("v1.zip"));
    let rollback_id = stopped.rollback_info.unwrap().rollback_deployment_id.expect("rollback created");
    let rollback = wait_complete(&cd, &rollback_id).await;
    assert_eq!(rollback.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(rollback.creator, Some(DeploymentCreator::CodeDeployRollback));
    assert_eq!(rollback.rollback_info.unwrap().rollback_triggering_deployment_id, Some(bad));
    assert_ne!(rollback_id, good);
}

#[tokio::test]
async fn stop_on_request_rollback_follows_the_group_unless_the_caller_says_otherwise() {
    let moto = moto();
    let (_emulator, cd, _) = group_with_stop_rollback(&moto, true).await;
    let bad = deploy(&cd, "v2.zip", false).await;
    cd.stop_deployment().deployment_id(&bad).send().await.unwrap();
    let stopped = wait_complete(&cd, &bad).await;
    let rollback_id = stopped.rollback_info.unwrap().rollback_deployment_id.expect("group config asks for rollback");
    assert_eq!(wait_complete(&cd, &rollback_id).await.status, Some(DeploymentStatus::Succeeded));

    let again = deploy(&cd, "v2.zip", false).await;
    cd.stop_deployment().deployment_id(&again).auto_rollback_enabled(false).send().await.unwrap();
    let stopped = wait_complete(&cd, &again).await;
    assert_eq!(stopped.status, Some(DeploymentStatus::Stopped));
    assert!(stopped.rollback_info.is_none(), "autoRollbackEnabled=false overrides the group");
}
