//! Blue/green deployments on EC2: the replacement found by tag, its install,
//! the Ready wait, traffic moved on and off, the originals' termination
//! wait, ContinueDeployment, stop and rollback. Every answer is held to the
//! service model (see `common::config`).

use std::time::Duration;

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, BlueGreenDeploymentConfiguration, DeploymentInfo, DeploymentOption,
    DeploymentStatus, DeploymentStyle, DeploymentType, DeploymentWaitType, Ec2TagFilter, Ec2TagFilterType,
    GreenFleetProvisioningAction, GreenFleetProvisioningOption, InstanceTarget, LifecycleEventStatus, LoadBalancerInfo, Tag,
    TargetFilterName, TargetGroupInfo, TargetInstances, TargetLabel, TargetStatus,
};
use codedeploy_emulator::Emulator;

use crate::common::{
    blue_green_style, blue_green_waits, client, emulator_with_s3, info, moto, poll_until, put, s3, s3_revision, wait_complete,
    zip_of,
};

/// Each hook writes `<event>` into a file in its instance, so a test sees
/// which events ran on which fleet.
fn bundle(fail_validate: bool) -> Vec<u8> {
    let mut appspec = String::from("version: 0.0\nos: linux\nhooks:\n");
    for event in ["ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic", "BeforeBlockTraffic", "AfterBlockTraffic"] {
        appspec.push_str(&format!("  {event}:\n    - location: hook.sh\n"));
    }
    let exit = if fail_validate { "[ \"$LIFECYCLE_EVENT\" = ValidateService ] && exit 3\n" } else { "" };
    let hook = format!("#!/bin/sh\necho \"$LIFECYCLE_EVENT\" >> \"$EMULATOR_INSTANCE_ROOT/events\"\n{exit}exit 0\n");
    zip_of(&[("appspec.yml", &appspec), ("hook.sh", &hook)])
}

/// How the group waits: STOP_DEPLOYMENT for `ready` minutes (None: reroute
/// at once), and TERMINATE after `terminate` minutes (None: KEEP_ALIVE).
struct Waits {
    ready: Option<i32>,
    terminate: Option<i32>,
}

fn blue_green_config(w: &Waits) -> BlueGreenDeploymentConfiguration {
    blue_green_waits(w.ready, w.terminate)
        .green_fleet_provisioning_option(
            GreenFleetProvisioningOption::builder().action(GreenFleetProvisioningAction::DiscoverExisting).build(),
        )
        .build()
}

fn load_balancer() -> LoadBalancerInfo {
    LoadBalancerInfo::builder().target_group_info_list(TargetGroupInfo::builder().name("web-tg").build()).build()
}

/// Application `shop` and blue/green group `prod` of `instances` instances.
async fn group(cd: &Client, instances: usize, waits: &Waits, rollback: bool) {
    group_of(cd, "shop", instances, waits, rollback).await
}

/// Application `app` and its blue/green group `prod`.
async fn group_of(cd: &Client, app: &str, instances: usize, waits: &Waits, rollback: bool) {
    cd.create_application().application_name(app).send().await.unwrap();
    cd.create_deployment_group()
        .application_name(app)
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
        .tags(Tag::builder().key("emulator:instances").value(instances.to_string()).build())
        .deployment_style(blue_green_style())
        .blue_green_deployment_configuration(blue_green_config(waits))
        .load_balancer_info(load_balancer())
        .set_auto_rollback_configuration(rollback.then(|| {
            AutoRollbackConfiguration::builder()
                .enabled(true)
                .events(AutoRollbackEvent::DeploymentFailure)
                .events(AutoRollbackEvent::DeploymentStopOnRequest)
                .build()
        }))
        .send()
        .await
        .unwrap();
}

fn green_tag(value: &str) -> TargetInstances {
    TargetInstances::builder()
        .tag_filters(Ec2TagFilter::builder().key("fleet").value(value).r#type(Ec2TagFilterType::KeyAndValue).build())
        .build()
}

async fn deploy(cd: &Client, key: &str, fleet: &str) -> String {
    deploy_in(cd, "shop", key, fleet).await
}

/// Deploys `key` to group `prod` of `app`, the replacement fleet tagged `fleet`.
async fn deploy_in(cd: &Client, app: &str, key: &str, fleet: &str) -> String {
    cd.create_deployment()
        .application_name(app)
        .deployment_group_name("prod")
        .revision(s3_revision("releases", key, None))
        .target_instances(green_tag(fleet))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap()
}

/// Polls until `done` holds for the deployment.
async fn wait_until(cd: &Client, id: &str, what: &str, done: impl Fn(&DeploymentInfo) -> bool) -> DeploymentInfo {
    poll_until(&format!("deployment {id} {what}"), || info(cd, id), done).await
}

async fn targets(cd: &Client, id: &str) -> Vec<InstanceTarget> {
    let ids = cd.list_deployment_targets().deployment_id(id).send().await.unwrap().target_ids.unwrap_or_default();
    let out = cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids)).send().await.unwrap();
    out.deployment_targets().iter().map(|t| t.instance_target.clone().unwrap()).collect()
}

fn labelled(all: &[InstanceTarget], label: TargetLabel) -> Vec<InstanceTarget> {
    all.iter().filter(|t| t.instance_label.as_ref() == Some(&label)).cloned().collect()
}

fn events(target: &InstanceTarget) -> Vec<(String, LifecycleEventStatus)> {
    target.lifecycle_events().iter().map(|e| (e.lifecycle_event_name.clone().unwrap(), e.status.clone().unwrap())).collect()
}

fn names(target: &InstanceTarget) -> Vec<String> {
    events(target).into_iter().map(|(n, _)| n).collect()
}

fn hooks_run(emulator: &Emulator, instance: &str) -> String {
    std::fs::read_to_string(emulator.work_dir().join("prod").join(instance).join("events")).unwrap_or_default()
}

const GREEN_EVENTS: [&str; 10] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
];
const BLOCK: [&str; 3] = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
const ALLOW: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

fn emulator(moto: &str, minute: Duration) -> Emulator {
    emulator_with_s3(moto, |c| c.minute = minute)
}

#[tokio::test]
async fn the_replacement_is_installed_then_given_traffic_and_both_fleets_are_labelled() {
    let moto = moto();
    put(&s3(&moto.endpoint), "releases", "v1.zip", bundle(false)).await;
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    group(&cd, 2, &Waits { ready: None, terminate: None }, false).await;
    let id = deploy(&cd, "v1.zip", "green").await;
    let done = wait_complete(&cd, &id).await;
    assert_eq!(done.status, Some(DeploymentStatus::Succeeded), "{done:?}");
    assert_eq!(done.deployment_style, Some(blue_green_style()));
    assert_eq!(done.blue_green_deployment_configuration, Some(blue_green_config(&Waits { ready: None, terminate: None })));
    assert_eq!(done.load_balancer_info, Some(load_balancer()));
    assert!(!done.instance_termination_wait_time_started);
    assert_eq!(done.deployment_overview.unwrap().succeeded, 4, "two replacements and two originals");

    let all = targets(&cd, &id).await;
    let (green, blue) = (labelled(&all, TargetLabel::Green), labelled(&all, TargetLabel::Blue));
    assert_eq!((green.len(), blue.len()), (2, 2));
    for t in &green {
        assert_eq!(names(t), GREEN_EVENTS);
        assert!(events(t).iter().all(|(_, s)| *s == LifecycleEventStatus::Succeeded), "{t:?}");
        let id = t.target_id.as_deref().unwrap();
        assert_eq!(hooks_run(&emulator, id), "ValidateService\nBeforeAllowTraffic\nAfterAllowTraffic\n");
    }
    for t in &blue {
        assert_eq!(names(t), BLOCK);
        assert_eq!(t.status, Some(TargetStatus::Succeeded));
        // A fresh original never installed a revision: nothing to run.
        assert_eq!(hooks_run(&emulator, t.target_id.as_deref().unwrap()), "");
    }
    let listed = cd
        .list_deployment_targets()
        .deployment_id(&id)
        .target_filters(TargetFilterName::ServerInstanceLabel, vec!["Green".into()])
        .send()
        .await
        .unwrap();
    let mut listed = listed.target_ids().to_vec();
    let mut green_ids: Vec<String> = green.iter().map(|t| t.target_id.clone().unwrap()).collect();
    listed.sort();
    green_ids.sort();
    assert_eq!(listed, green_ids);

    // The replacement is the group's fleet now: the next release replaces it,
    // and its block-traffic hooks come from the revision it runs.
    put(&s3(&moto.endpoint), "releases", "v2.zip", bundle(false)).await;
    let next = deploy(&cd, "v2.zip", "green").await;
    assert_eq!(wait_complete(&cd, &next).await.status, Some(DeploymentStatus::Succeeded));
    let all = targets(&cd, &next).await;
    let mut originals: Vec<String> = labelled(&all, TargetLabel::Blue).iter().map(|t| t.target_id.clone().unwrap()).collect();
    originals.sort();
    assert_eq!(originals, green_ids, "the last replacement is this release's original environment");
    for id in &originals {
        assert!(hooks_run(&emulator, id).ends_with("BeforeBlockTraffic\nAfterBlockTraffic\n"), "{}", hooks_run(&emulator, id));
    }
    assert!(labelled(&all, TargetLabel::Green).iter().all(|t| !originals.contains(t.target_id.as_ref().unwrap())));
}

#[tokio::test]
async fn stop_deployment_stands_ready_until_continued_and_the_originals_wait_for_termination() {
    let moto = moto();
    put(&s3(&moto.endpoint), "releases", "v1.zip", bundle(false)).await;
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    group(&cd, 1, &Waits { ready: Some(60), terminate: Some(60) }, false).await;
    let id = deploy(&cd, "v1.zip", "green").await;

    let ready = wait_until(&cd, &id, "stood Ready", |d| d.status == Some(DeploymentStatus::Ready)).await;
    assert_eq!(ready.deployment_overview.unwrap().ready, 1);
    let all = targets(&cd, &id).await;
    let green = &labelled(&all, TargetLabel::Green)[0];
    assert_eq!(green.status, Some(TargetStatus::Ready));
    assert_eq!(events(green)[7], ("BeforeAllowTraffic".to_string(), LifecycleEventStatus::Pending));
    assert_eq!(labelled(&all, TargetLabel::Blue)[0].status, Some(TargetStatus::Pending));

    let early = cd
        .continue_deployment()
        .deployment_id(&id)
        .deployment_wait_type(DeploymentWaitType::TerminationWait)
        .send()
        .await
        .unwrap_err();
    assert_eq!(early.code(), Some("DeploymentIsNotInReadyStateException"));
    cd.continue_deployment().deployment_id(&id).deployment_wait_type(DeploymentWaitType::ReadyWait).send().await.unwrap();

    let waiting = wait_until(&cd, &id, "started its termination wait", |d| d.instance_termination_wait_time_started).await;
    assert_eq!(waiting.status, Some(DeploymentStatus::InProgress));
    let again = cd.continue_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(again.code(), Some("DeploymentIsNotInReadyStateException"), "READY_WAIT is over");
    cd.continue_deployment().deployment_id(&id).deployment_wait_type(DeploymentWaitType::TerminationWait).send().await.unwrap();
    let done = wait_complete(&cd, &id).await;
    assert_eq!(done.status, Some(DeploymentStatus::Succeeded));
    assert!(done.instance_termination_wait_time_started);
    let after = cd.continue_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(after.code(), Some("DeploymentAlreadyCompletedException"));
}

#[tokio::test]
async fn a_ready_wait_that_runs_out_stops_the_deployment_without_traffic() {
    let moto = moto();
    put(&s3(&moto.endpoint), "releases", "v1.zip", bundle(false)).await;
    let emulator = emulator(&moto.endpoint, Duration::from_millis(50));
    let cd = client(&emulator);
    group(&cd, 1, &Waits { ready: Some(1), terminate: None }, true).await;
    let id = deploy(&cd, "v1.zip", "green").await;
    let done = wait_complete(&cd, &id).await;
    assert_eq!(done.status, Some(DeploymentStatus::Stopped));
    assert_eq!(done.error_information.unwrap().code.unwrap().as_str(), "TIMEOUT");
    assert!(done.rollback_info.is_none(), "running out of time is not a stop on request");
    let all = targets(&cd, &id).await;
    let green = &labelled(&all, TargetLabel::Green)[0];
    assert_eq!(green.status, Some(TargetStatus::Skipped));
    assert!(events(green)[7..].iter().all(|(_, s)| *s == LifecycleEventStatus::Skipped), "{green:?}");
}

#[tokio::test]
async fn a_failing_replacement_is_rolled_back_by_moving_traffic_back_to_the_originals() {
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    put(&s3, "releases", "good.zip", bundle(false)).await;
    put(&s3, "releases", "bad.zip", bundle(true)).await;
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    group(&cd, 1, &Waits { ready: None, terminate: None }, true).await;
    let good = deploy(&cd, "good.zip", "green").await;
    assert_eq!(wait_complete(&cd, &good).await.status, Some(DeploymentStatus::Succeeded));
    let bad = deploy(&cd, "bad.zip", "green").await;
    let failed = wait_complete(&cd, &bad).await;
    assert_eq!(failed.status, Some(DeploymentStatus::Failed));
    let all = targets(&cd, &bad).await;
    let green = &labelled(&all, TargetLabel::Green)[0];
    assert_eq!(events(green)[6], ("ValidateService".to_string(), LifecycleEventStatus::Failed));
    assert_eq!(labelled(&all, TargetLabel::Blue)[0].status, Some(TargetStatus::Skipped), "traffic never moved");

    let rollback = failed.rollback_info.unwrap().rollback_deployment_id.unwrap();
    let restored = wait_complete(&cd, &rollback).await;
    assert_eq!(restored.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(restored.creator.unwrap().as_str(), "codeDeployRollback");
    assert_eq!(restored.deployment_style, Some(blue_green_style()));
    let all = targets(&cd, &rollback).await;
    let (blue, green) = (&labelled(&all, TargetLabel::Blue)[0], &labelled(&all, TargetLabel::Green)[0]);
    assert_eq!(names(blue), ALLOW, "the originals get traffic back");
    assert_eq!(names(green), BLOCK, "the replacement loses it");
    assert!(all.iter().all(|t| t.status == Some(TargetStatus::Succeeded)));
}

#[tokio::test]
async fn a_stop_while_ready_ends_stopped_and_rolls_back_on_request() {
    let moto = moto();
    put(&s3(&moto.endpoint), "releases", "v1.zip", bundle(false)).await;
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    group(&cd, 1, &Waits { ready: Some(60), terminate: None }, true).await;
    let first = deploy(&cd, "v1.zip", "green").await;
    wait_until(&cd, &first, "stood Ready", |d| d.status == Some(DeploymentStatus::Ready)).await;
    cd.continue_deployment().deployment_id(&first).send().await.unwrap();
    assert_eq!(wait_complete(&cd, &first).await.status, Some(DeploymentStatus::Succeeded));

    let id = deploy(&cd, "v1.zip", "green").await;
    wait_until(&cd, &id, "stood Ready", |d| d.status == Some(DeploymentStatus::Ready)).await;
    cd.stop_deployment().deployment_id(&id).send().await.unwrap();
    let done = wait_complete(&cd, &id).await;
    assert_eq!(done.status, Some(DeploymentStatus::Stopped));
    assert_eq!(done.error_information.unwrap().code.unwrap().as_str(), "MANUAL_STOP");
    let green = &labelled(&targets(&cd, &id).await, TargetLabel::Green)[0];
    assert_eq!(green.status, Some(TargetStatus::Skipped), "installed, never given traffic");
    let rollback = done.rollback_info.unwrap().rollback_deployment_id.unwrap();
    assert_eq!(wait_complete(&cd, &rollback).await.status, Some(DeploymentStatus::Succeeded));
}

#[tokio::test]
async fn what_the_emulator_cannot_model_is_refused_saying_so() {
    let moto = moto();
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    cd.create_application().application_name("shop").send().await.unwrap();
    let base = || {
        cd.create_deployment_group()
            .application_name("shop")
            .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
            .deployment_style(blue_green_style())
            .load_balancer_info(load_balancer())
    };
    let copy = BlueGreenDeploymentConfiguration::builder()
        .green_fleet_provisioning_option(
            GreenFleetProvisioningOption::builder().action(GreenFleetProvisioningAction::CopyAutoScalingGroup).build(),
        )
        .build();
    let e = base().deployment_group_name("asg").blue_green_deployment_configuration(copy).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidBlueGreenDeploymentConfigurationException"));
    assert!(e.message().unwrap().contains("Auto Scaling"), "{e:?}");

    let without = DeploymentStyle::builder()
        .deployment_type(DeploymentType::BlueGreen)
        .deployment_option(DeploymentOption::WithoutTrafficControl)
        .build();
    let e = base().deployment_group_name("no-tc").deployment_style(without).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidDeploymentStyleException"));

    let onprem = aws_sdk_codedeploy::types::TagFilter::builder()
        .key("k")
        .value("v")
        .r#type(aws_sdk_codedeploy::types::TagFilterType::KeyAndValue)
        .build();
    let e = base().deployment_group_name("onprem").on_premises_instance_tag_filters(onprem).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidDeploymentStyleException"));
    assert!(e.message().unwrap().contains("on-premises"), "{e:?}");

    // A group without a load balancer is accepted; its deployments fail.
    cd.create_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
        .deployment_style(blue_green_style())
        .blue_green_deployment_configuration(blue_green_config(&Waits { ready: None, terminate: None }))
        .send()
        .await
        .unwrap();
    let group = cd.get_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap();
    assert_eq!(group.deployment_group_info.unwrap().deployment_style, Some(blue_green_style()));
    let e = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("releases", "v1.zip", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidTargetInstancesException"), "the replacement must be named");
    let id = deploy(&cd, "v1.zip", "green").await;
    let done = wait_complete(&cd, &id).await;
    assert_eq!(done.error_information.unwrap().code.unwrap().as_str(), "MISSING_ELB_INFORMATION");
}

/// ContinueDeployment in success and in error on one emulator, for the
/// test that every operation answers within the model.
pub async fn drive_continue(cd: &Client, moto: &str) {
    put(&s3(moto), "releases", "bg.zip", bundle(false)).await;
    group_of(cd, "bg", 1, &Waits { ready: Some(60), terminate: Some(60) }, false).await;
    let id = deploy_in(cd, "bg", "bg.zip", "green").await;
    cd.continue_deployment().deployment_id("bogus").send().await.unwrap_err();
    wait_until(cd, &id, "stood Ready", |d| d.status == Some(DeploymentStatus::Ready)).await;
    cd.continue_deployment().deployment_id(&id).send().await.unwrap();
    wait_until(cd, &id, "waited for termination", |d| d.instance_termination_wait_time_started).await;
    cd.continue_deployment().deployment_id(&id).deployment_wait_type(DeploymentWaitType::TerminationWait).send().await.unwrap();
    wait_complete(cd, &id).await;
    for t in targets(cd, &id).await {
        assert_eq!(t.status, Some(TargetStatus::Succeeded));
    }
}
