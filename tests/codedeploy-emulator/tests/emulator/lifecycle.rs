//! Deployments advancing in the background: lifecycle events, bundle
//! downloads from S3 (moto when available), failures and stops.

use std::time::Duration;

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{DeploymentStatus, InstanceTarget, LifecycleEventStatus, TargetStatus};
use codedeploy_emulator::Emulator;

use crate::common::{app_and_group, client, config, create_deployment, emulator_with_s3, moto, put, s3, wait_complete, zip_of};

const APPSPEC: &str = "version: 0.0\nos: linux\nfiles:\n  - source: /index.html\n    destination: /var/www\n";

async fn targets(cd: &Client, id: &str) -> Vec<InstanceTarget> {
    let ids = cd.list_deployment_targets().deployment_id(id).send().await.unwrap().target_ids.unwrap_or_default();
    let out = cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids)).send().await.unwrap();
    out.deployment_targets().iter().map(|t| t.instance_target.clone().unwrap()).collect()
}

fn event_status(target: &InstanceTarget, name: &str) -> LifecycleEventStatus {
    target
        .lifecycle_events()
        .iter()
        .find(|e| e.lifecycle_event_name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no event {name}"))
        .status
        .clone()
        .unwrap()
}

fn download_message(target: &InstanceTarget) -> String {
    failure_message(target, "DownloadBundle")
}

fn failure_message(target: &InstanceTarget, name: &str) -> String {
    let event = target.lifecycle_events().iter().find(|e| e.lifecycle_event_name.as_deref() == Some(name)).unwrap();
    let diagnostics = event.diagnostics.clone().unwrap();
    assert_eq!(diagnostics.error_code.unwrap().as_str(), "UnknownError");
    diagnostics.message.unwrap()
}

#[tokio::test]
async fn unreachable_s3_fails_download_bundle_and_skips_the_rest() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "shop.zip", None).await;
    let first = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info.unwrap();
    assert_eq!(first.status, Some(DeploymentStatus::Created));

    let info = wait_complete(&cd, &id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    let error = info.error_information.unwrap();
    assert_eq!(error.code.unwrap().as_str(), "HEALTH_CONSTRAINTS");
    assert!(error.message.unwrap().contains("too many individual instances failed"));
    assert!(info.start_time.is_some() && info.complete_time.is_some());
    let overview = info.deployment_overview.unwrap();
    assert_eq!((overview.failed, overview.succeeded, overview.pending), (1, 0, 0));

    let targets = targets(&cd, &id).await;
    assert_eq!(targets.len(), 1);
    let target = &targets[0];
    assert!(target.target_id().unwrap().starts_with("i-"));
    assert_eq!(target.target_id().unwrap().len(), 19);
    assert_eq!(target.status, Some(TargetStatus::Failed));
    assert_eq!(event_status(target, "ApplicationStop"), LifecycleEventStatus::Succeeded);
    assert_eq!(event_status(target, "DownloadBundle"), LifecycleEventStatus::Failed);
    for later in ["BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"] {
        assert_eq!(event_status(target, later), LifecycleEventStatus::Skipped, "{later}");
    }
    let message = download_message(target);
    assert!(message.contains("s3://releases/shop.zip") && message.contains("could not reach S3"), "{message}");
}

#[tokio::test]
async fn remaining_instances_are_skipped_once_one_at_a_time_fails() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 3, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "shop.zip", None).await;
    let info = wait_complete(&cd, &id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    let overview = info.deployment_overview.unwrap();
    assert_eq!((overview.failed, overview.skipped, overview.succeeded), (1, 2, 0));
    let skipped = targets(&cd, &id).await.into_iter().filter(|t| t.status == Some(TargetStatus::Skipped)).count();
    assert_eq!(skipped, 2);
}

#[tokio::test]
async fn stop_deployment_stops_it_and_refuses_completed_ones() {
    let mut cfg = config();
    cfg.step_delay = Duration::from_millis(100);
    let emulator = Emulator::start(cfg).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 2, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "shop.zip", None).await;
    let stop = cd.stop_deployment().deployment_id(&id).send().await.unwrap();
    assert_eq!(stop.status.unwrap().as_str(), "Pending");
    let info = wait_complete(&cd, &id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Stopped));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "MANUAL_STOP");
    let again = cd.stop_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(again.code(), Some("DeploymentAlreadyCompletedException"));
}

#[tokio::test]
async fn stopping_a_one_instance_deployment_mid_flight_ends_stopped_not_failed() {
    let mut cfg = config();
    cfg.step_delay = Duration::from_millis(200);
    let emulator = Emulator::start(cfg).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "shop.zip", None).await;
    // Wait until the only instance is under way, so the stop interrupts it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info.unwrap();
        if info.deployment_overview.is_some_and(|o| o.in_progress > 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the instance never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cd.stop_deployment().deployment_id(&id).send().await.unwrap();
    let info = wait_complete(&cd, &id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Stopped));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "MANUAL_STOP");
}

#[tokio::test]
async fn targets_are_not_listed_before_the_deployment_starts() {
    let mut cfg = config();
    cfg.step_delay = Duration::from_millis(300);
    let emulator = Emulator::start(cfg).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "shop.zip", None).await;
    let early = cd.list_deployment_targets().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(early.code(), Some("DeploymentNotStartedException"));
    cd.stop_deployment().deployment_id(&id).send().await.unwrap();
    wait_complete(&cd, &id).await;
}

#[tokio::test]
async fn bundle_from_s3_deploys_to_every_instance() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    let etag = put(&s3, "releases", "shop-1.zip", zip_of(&[("appspec.yml", APPSPEC), ("index.html", "v1")])).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 3, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "shop-1.zip", Some(&etag)).await;
    let info = wait_complete(&cd, &id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded), "{info:?}");
    assert!(info.error_information.is_none());
    let overview = info.deployment_overview.unwrap();
    assert_eq!((overview.succeeded, overview.failed), (3, 0));
    for target in targets(&cd, &id).await {
        assert_eq!(target.status, Some(TargetStatus::Succeeded));
        for event in target.lifecycle_events() {
            assert_eq!(event.status, Some(LifecycleEventStatus::Succeeded));
            assert!(event.start_time.is_some() && event.end_time.is_some());
        }
        let installed = emulator.work_dir().join("prod").join(target.target_id().unwrap()).join("var/www/index.html");
        assert_eq!(std::fs::read_to_string(&installed).unwrap(), "v1");
    }
    let group = cd
        .get_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .send()
        .await
        .unwrap()
        .deployment_group_info
        .unwrap();
    assert_eq!(group.last_successful_deployment.unwrap().deployment_id.as_deref(), Some(id.as_str()));
    assert_eq!(group.last_attempted_deployment.unwrap().status, Some(DeploymentStatus::Succeeded));
}

#[tokio::test]
async fn bundle_download_failures_say_what_went_wrong() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "shop-1.zip", zip_of(&[("appspec.yml", APPSPEC), ("index.html", "v1")])).await;
    put(&s3, "releases", "no-appspec.zip", zip_of(&[("index.html", "v1")])).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;

    // A bundle without an appspec downloads fine: the agent first reads the
    // appspec at BeforeInstall, and fails there.
    let cases = [
        ("shop-404.zip", None, "DownloadBundle", "does not exist"),
        ("shop-1.zip", Some("0123456789abcdef0123456789abcdef"), "DownloadBundle", "ETag"),
        ("no-appspec.zip", None, "BeforeInstall", "did not find an AppSpec file"),
    ];
    for (key, etag, event, expected) in cases {
        let id = create_deployment(&cd, "prod", "releases", key, etag).await;
        let info = wait_complete(&cd, &id).await;
        assert_eq!(info.status, Some(DeploymentStatus::Failed), "{key}");
        let message = failure_message(&targets(&cd, &id).await[0], event);
        assert!(message.contains(expected), "{key}: {message}");
    }
}
