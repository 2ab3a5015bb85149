//! Deployment configs: batch sizes, the minimum-healthy-hosts rule, custom
//! configs, and fault injection by group tags.

use std::time::Duration;

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{
    DeploymentInfo, DeploymentStatus, InstanceTarget, MinimumHealthyHosts, MinimumHealthyHostsType, TargetStatus,
};

use crate::common::{app_and_group, client, emulator_with_s3, moto, put, s3, s3_revision, wait_complete, zip_of};

const APPSPEC: &str = "version: 0.0\nos: linux\n";

async fn run(cd: &Client, config: &str) -> (DeploymentInfo, Vec<InstanceTarget>) {
    let id = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .deployment_config_name(config)
        .revision(s3_revision("releases", "app.zip", None))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    let info = wait_complete(cd, &id).await;
    let ids: Vec<String> = crate::common::all_target_ids(cd, &id).await;
    let mut targets = Vec::new();
    for chunk in ids.chunks(25) {
        let out = cd.batch_get_deployment_targets().deployment_id(&id).set_target_ids(Some(chunk.to_vec())).send().await.unwrap();
        targets.extend(out.deployment_targets().iter().map(|t| t.instance_target.clone().unwrap()));
    }
    (info, targets)
}

fn counts(info: &DeploymentInfo) -> (i64, i64, i64) {
    let o = info.deployment_overview.clone().unwrap();
    (o.succeeded, o.failed, o.skipped)
}

/// Starts moto + emulator with a group of `n` instances tagged `tags`.
async fn setup(n: usize, tags: &[(&str, &str)], step: Duration) -> (crate::common::Moto, codedeploy_emulator::Emulator, Client) {
    let moto = moto();
    put(&s3(&moto.endpoint), "releases", "app.zip", zip_of(&[("appspec.yml", APPSPEC)])).await;
    let emulator = emulator_with_s3(&moto.endpoint, |c| c.step_delay = step);
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", n, tags).await;
    (moto, emulator, cd)
}

fn first_start(t: &InstanceTarget) -> f64 {
    t.lifecycle_events()[0].start_time.unwrap().as_secs_f64()
}
fn last_end(t: &InstanceTarget) -> f64 {
    t.lifecycle_events().last().unwrap().end_time.unwrap().as_secs_f64()
}

#[tokio::test]
async fn one_at_a_time_deploys_instances_in_sequence_and_all_at_once_in_parallel() {
    let (_moto, _emulator, cd) = setup(3, &[], Duration::from_millis(20)).await;
    let (info, mut targets) = run(&cd, "CodeDeployDefault.OneAtATime").await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded));
    targets.sort_by(|a, b| first_start(a).total_cmp(&first_start(b)));
    for pair in targets.windows(2) {
        assert!(first_start(&pair[1]) >= last_end(&pair[0]), "OneAtATime overlapped instances");
    }
    let (info, targets) = run(&cd, "CodeDeployDefault.AllAtOnce").await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded));
    let latest_start = targets.iter().map(first_start).fold(f64::MIN, f64::max);
    let earliest_end = targets.iter().map(last_end).fold(f64::MAX, f64::min);
    assert!(latest_start < earliest_end, "AllAtOnce should run every instance together");
}

#[tokio::test]
async fn one_at_a_time_fails_on_an_early_instance_but_tolerates_the_last() {
    let tags = [("emulator:fail-event", "ValidateService"), ("emulator:fail-instances", "1")];
    let (_moto, _emulator, cd) = setup(3, &tags, Duration::ZERO).await;
    let (info, targets) = run(&cd, "CodeDeployDefault.OneAtATime").await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    assert_eq!(counts(&info), (0, 1, 2));
    let failed = targets.iter().find(|t| t.status == Some(TargetStatus::Failed)).unwrap();
    let diag = failed.lifecycle_events()[6].diagnostics.clone().unwrap();
    assert_eq!(diag.script_name.as_deref(), Some("emulator:fail-event"));
    assert!(diag.message.unwrap().contains("Injected failure"));
}

#[tokio::test]
async fn half_at_a_time_survives_failures_within_half_the_fleet() {
    let tags = [("emulator:fail-event", "AfterInstall"), ("emulator:fail-instances", "1")];
    let (_moto, _emulator, cd) = setup(4, &tags, Duration::ZERO).await;
    let (info, _) = run(&cd, "CodeDeployDefault.HalfAtATime").await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(counts(&info), (3, 1, 0));
}

#[tokio::test]
async fn all_at_once_fails_only_when_every_instance_fails() {
    let tags = [("emulator:fail-event", "BeforeInstall"), ("emulator:fail-instances", "2")];
    let (_moto, _emulator, cd) = setup(3, &tags, Duration::ZERO).await;
    let (info, _) = run(&cd, "CodeDeployDefault.AllAtOnce").await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(counts(&info), (1, 2, 0));

    let (_moto, _emulator, cd) = setup(3, &[("emulator:fail-event", "BeforeInstall")], Duration::ZERO).await;
    let (info, _) = run(&cd, "CodeDeployDefault.AllAtOnce").await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    assert_eq!(counts(&info), (0, 3, 0));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "HEALTH_CONSTRAINTS");
}

#[tokio::test]
async fn custom_host_count_config_stops_when_healthy_hosts_would_drop_below_it() {
    let tags = [("emulator:fail-event", "ApplicationStart"), ("emulator:fail-instances", "1")];
    let (_moto, _emulator, cd) = setup(3, &tags, Duration::ZERO).await;
    let created = cd
        .create_deployment_config()
        .deployment_config_name("KeepTwo")
        .minimum_healthy_hosts(MinimumHealthyHosts::builder().r#type(MinimumHealthyHostsType::HostCount).value(2).build())
        .send()
        .await
        .unwrap();
    let got = cd.get_deployment_config().deployment_config_name("KeepTwo").send().await.unwrap();
    let got = got.deployment_config_info.unwrap();
    assert_eq!(got.deployment_config_id, created.deployment_config_id);
    let hosts = got.minimum_healthy_hosts.unwrap();
    assert_eq!((hosts.r#type, hosts.value), (Some(MinimumHealthyHostsType::HostCount), 2));
    let (info, _) = run(&cd, "KeepTwo").await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    assert_eq!(counts(&info), (0, 1, 2));

    cd.create_deployment_config()
        .deployment_config_name("KeepThree")
        .minimum_healthy_hosts(MinimumHealthyHosts::builder().r#type(MinimumHealthyHostsType::HostCount).value(3).build())
        .send()
        .await
        .unwrap();
    let (info, _) = run(&cd, "KeepThree").await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "HEALTH_CONSTRAINTS_INVALID");
}

#[tokio::test]
async fn deployment_configs_are_listed_and_validated() {
    let emulator = codedeploy_emulator::Emulator::start(crate::common::config()).unwrap();
    let cd = client(&emulator);
    let one = cd.get_deployment_config().deployment_config_name("CodeDeployDefault.OneAtATime").send().await.unwrap();
    assert_eq!(one.deployment_config_info.unwrap().minimum_healthy_hosts.unwrap().value, 1);
    let half = cd.get_deployment_config().deployment_config_name("CodeDeployDefault.HalfAtATime").send().await.unwrap();
    let hosts = half.deployment_config_info.unwrap().minimum_healthy_hosts.unwrap();
    assert_eq!((hosts.r#type, hosts.value), (Some(MinimumHealthyHostsType::FleetPercent), 50));
    let missing = cd.get_deployment_config().deployment_config_name("Nope").send().await.unwrap_err();
    assert_eq!(missing.code(), Some("DeploymentConfigDoesNotExistException"));
    let bad = cd
        .create_deployment_config()
        .deployment_config_name("Bad")
        .minimum_healthy_hosts(MinimumHealthyHosts::builder().r#type(MinimumHealthyHostsType::FleetPercent).value(100).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("InvalidMinimumHealthyHostValueException"));
    let dup = cd
        .create_deployment_config()
        .deployment_config_name("CodeDeployDefault.AllAtOnce")
        .minimum_healthy_hosts(MinimumHealthyHosts::builder().r#type(MinimumHealthyHostsType::HostCount).value(0).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some("DeploymentConfigAlreadyExistsException"));
    let listed = cd.list_deployment_configs().send().await.unwrap();
    // Three Server configs, AWS's nine predefined Lambda ones and five ECS ones.
    assert_eq!(listed.deployment_configs_list().len(), 17);
}

#[tokio::test]
async fn unknown_fault_tags_are_refused_at_group_creation() {
    let emulator = codedeploy_emulator::Emulator::start(crate::common::config()).unwrap();
    let cd = client(&emulator);
    cd.create_application().application_name("shop").send().await.unwrap();
    let err = cd
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .tags(aws_sdk_codedeploy::types::Tag::builder().key("emulator:fail-event").value("Reboot").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidTagException"));
}

#[tokio::test]
async fn a_thousand_instances_finish_in_seconds() {
    let (_moto, _emulator, cd) = setup(1000, &[], Duration::ZERO).await;
    let started = std::time::Instant::now();
    let (info, _) = run(&cd, "CodeDeployDefault.AllAtOnce").await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(counts(&info), (1000, 0, 0));
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}
