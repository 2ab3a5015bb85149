//! ECS deployments on moto's ECS: a replacement task set created beside the
//! original, production traffic moved to it as the config says, the
//! replacement made primary and the original removed; a failing hook or a
//! stop rolled back to the original task set; the Ready wait.

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, BlueGreenDeploymentConfiguration, BundleType, ComputePlatform,
    DeploymentStatus, DeploymentStyle, DeploymentType, DeploymentWaitType, EcsService, EcsTarget, LifecycleEventStatus,
    LoadBalancerInfo, RevisionLocation, RevisionLocationType, S3Location, TargetGroupInfo, TargetGroupPairInfo, TargetLabel,
    TargetStatus, TrafficRoute,
};
use codedeploy_emulator::Emulator;

use crate::common::{blue_green_style, blue_green_waits, client, emulator_with_s3, moto, poll_until, wait_complete};

const CLUSTER: &str = "shop";
const SERVICE: &str = "web";

fn ecs_client(endpoint: &str) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

/// Cluster `shop` with service `web` (deployed by CodeDeploy) on task
/// definition `web:1`, and `web:2` registered for the release.
async fn service(moto: &str, controller: aws_sdk_ecs::types::DeploymentControllerType) -> aws_sdk_ecs::Client {
    let ecs = ecs_client(moto);
    ecs.create_cluster().cluster_name(CLUSTER).send().await.unwrap();
    for image in ["nginx:1", "nginx:2"] {
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("web")
            .image(image)
            .memory(128)
            .port_mappings(aws_sdk_ecs::types::PortMapping::builder().container_port(80).build())
            .build();
        ecs.register_task_definition().family("web").container_definitions(container).send().await.unwrap();
    }
    let lb = aws_sdk_ecs::types::LoadBalancer::builder()
        .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/1111111111111111")
        .container_name("web")
        .container_port(80)
        .build();
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition("web:1")
        .desired_count(2)
        .load_balancers(lb)
        .deployment_controller(aws_sdk_ecs::types::DeploymentController::builder().r#type(controller).build().unwrap())
        .send()
        .await
        .unwrap();
    ecs
}

/// moto's task sets of the service: (task definition family:revision, status).
async fn task_sets(ecs: &aws_sdk_ecs::Client) -> Vec<(String, String)> {
    let out = ecs.describe_task_sets().cluster(CLUSTER).service(SERVICE).send().await.unwrap();
    let mut sets: Vec<(String, String)> = out
        .task_sets()
        .iter()
        .map(|t| {
            let definition = t.task_definition().unwrap().rsplit('/').next().unwrap().to_string();
            (definition, t.status().unwrap().to_string())
        })
        .collect();
    sets.sort();
    sets
}

fn load_balancer_info(test_listener: bool) -> LoadBalancerInfo {
    let route = |name: &str| {
        TrafficRoute::builder()
            .listener_arns(format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/{name}"))
            .build()
    };
    let mut pair = TargetGroupPairInfo::builder()
        .target_groups(TargetGroupInfo::builder().name("web-blue").build())
        .target_groups(TargetGroupInfo::builder().name("web-green").build())
        .prod_traffic_route(route("prod"));
    if test_listener {
        pair = pair.test_traffic_route(route("test"));
    }
    LoadBalancerInfo::builder().target_group_pair_info_list(pair.build()).build()
}

/// How the group waits: Ready for `ready` minutes (STOP_DEPLOYMENT) or not
/// at all, and `termination` minutes before the original goes.
fn blue_green(ready: Option<i32>, termination: i32) -> BlueGreenDeploymentConfiguration {
    blue_green_waits(ready, Some(termination)).build()
}

/// Application `shop` (ECS) and its group `web` on the service.
async fn app_and_group(cd: &Client, config: &str, bg: BlueGreenDeploymentConfiguration, rollback: &[AutoRollbackEvent]) {
    tagged_app_and_group(cd, config, bg, rollback, None).await;
}

/// The same, the group tagged `tag` (an emulator fault).
async fn tagged_app_and_group(
    cd: &Client,
    config: &str,
    bg: BlueGreenDeploymentConfiguration,
    rollback: &[AutoRollbackEvent],
    tag: Option<(&str, &str)>,
) {
    cd.create_application().application_name("shop").compute_platform(ComputePlatform::Ecs).send().await.unwrap();
    cd.create_deployment_group()
        .application_name("shop")
        .deployment_group_name("web")
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
        .deployment_config_name(config)
        .deployment_style(blue_green_style())
        .blue_green_deployment_configuration(bg)
        .load_balancer_info(load_balancer_info(true))
        .ecs_services(EcsService::builder().service_name(SERVICE).cluster_name(CLUSTER).build())
        .set_auto_rollback_configuration(
            (!rollback.is_empty())
                .then(|| AutoRollbackConfiguration::builder().enabled(true).set_events(Some(rollback.to_vec())).build()),
        )
        .set_tags(tag.map(|(k, v)| vec![aws_sdk_codedeploy::types::Tag::builder().key(k).value(v).build()]))
        .send()
        .await
        .unwrap();
}

fn appspec(task_definition: &str, hooks: &[(&str, &str)]) -> String {
    let mut text = format!(
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"{task_definition}\"\n        LoadBalancerInfo:\n          ContainerName: \"web\"\n          ContainerPort: 80\n"
    );
    if !hooks.is_empty() {
        text.push_str("Hooks:\n");
        for (event, function) in hooks {
            text.push_str(&format!("  - {event}: \"{function}\"\n"));
        }
    }
    text
}

fn content(spec: &str) -> RevisionLocation {
    RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(spec).build())
        .build()
}

async fn deploy(cd: &Client, spec: &str) -> String {
    let out = cd.create_deployment().application_name("shop").deployment_group_name("web").revision(content(spec)).send().await;
    out.unwrap().deployment_id.unwrap()
}

fn emulator(moto: &str, minute: Duration) -> Emulator {
    emulator_with_s3(moto, |c| {
        c.minute = minute;
        c.ecs_endpoint = Some(moto.to_string());
        c.lambda_endpoint = Some(moto.to_string());
    })
}

/// The deployment's one target, once it has started.
async fn ecs_target(cd: &Client, id: &str) -> EcsTarget {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(out) = cd.list_deployment_targets().deployment_id(id).send().await {
            let ids = out.target_ids.unwrap();
            let got = cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids)).send().await.unwrap();
            return got.deployment_targets()[0].ecs_target.clone().unwrap();
        }
        assert!(Instant::now() < deadline, "deployment {id} never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The weight of the task set labelled `label` in the target's `taskSetsInfo`.
fn weight(target: &EcsTarget, label: TargetLabel) -> Option<f64> {
    target.task_sets_info().iter().find(|t| t.task_set_label() == Some(&label)).map(|t| t.traffic_weight())
}

async fn status(cd: &Client, id: &str) -> DeploymentStatus {
    cd.get_deployment().deployment_id(id).send().await.unwrap().deployment_info.unwrap().status.unwrap()
}

/// Waits until `check` holds for the deployment's target.
async fn until(cd: &Client, id: &str, what: &str, check: impl Fn(&EcsTarget) -> bool) -> EcsTarget {
    poll_until(what, || ecs_target(cd, id), check).await
}

#[tokio::test]
async fn a_linear_release_moves_the_weights_step_by_step_then_replaces_the_original_task_set() {
    let moto = moto();
    let ecs = service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    // Each 10 % step stands 100 ms: long enough to see every one.
    let emulator = emulator(&moto.endpoint, Duration::from_millis(100));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.ECSLinear10PercentEvery1Minutes", blue_green(None, 0), &[]).await;
    let id = deploy(&cd, &appspec("web:2", &[])).await;
    let mut seen = Vec::new();
    loop {
        let target = ecs_target(&cd, &id).await;
        if let Some(w) = weight(&target, TargetLabel::Green)
            && seen.last() != Some(&w)
        {
            seen.push(w);
            let blue = weight(&target, TargetLabel::Blue).unwrap();
            assert!((blue + w - 100.0).abs() < 1e-9, "the two weights add up to 100: {blue} + {w}");
        }
        if status(&cd, &id).await == DeploymentStatus::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen.first(), Some(&0.0), "the replacement starts without production traffic: {seen:?}");
    assert_eq!(seen.last(), Some(&100.0), "{seen:?}");
    assert!(seen.len() >= 5, "the weight moved in 10 % steps: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1] && (w[1] - w[0]) % 10.0 == 0.0), "{seen:?}");

    let info = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info.unwrap();
    assert_eq!(info.compute_platform, Some(ComputePlatform::Ecs));
    assert_eq!(info.deployment_style, Some(blue_green_style()));
    assert!(info.load_balancer_info.is_some() && info.blue_green_deployment_configuration.is_some());
    let target = ecs_target(&cd, &id).await;
    assert_eq!(target.target_id(), Some("shop:web"));
    assert_eq!(target.target_arn(), Some("arn:aws:ecs:us-east-1:123456789012:service/shop/web"));
    let names: Vec<&str> = target.lifecycle_events().iter().map(|e| e.lifecycle_event_name().unwrap()).collect();
    assert_eq!(
        names,
        [
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "AllowTestTraffic",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic",
            "AllowTraffic",
            "AfterAllowTraffic"
        ]
    );
    let sets: Vec<_> = target
        .task_sets_info()
        .iter()
        .map(|t| (t.task_set_label().cloned(), t.target_group().and_then(|g| g.name()), t.status(), t.traffic_weight()))
        .collect();
    assert_eq!(
        sets,
        [
            (Some(TargetLabel::Blue), Some("web-blue"), Some("DRAINING"), 0.0),
            (Some(TargetLabel::Green), Some("web-green"), Some("PRIMARY"), 100.0)
        ]
    );
    assert!(target.task_sets_info().iter().all(|t| t.desired_count() == 2 && t.identifer().is_some()));
    // In moto: the replacement is the service's only task set, and primary.
    assert_eq!(task_sets(&ecs).await, [("web:2".to_string(), "PRIMARY".to_string())]);
    let svc = ecs.describe_services().cluster(CLUSTER).services(SERVICE).send().await.unwrap();
    assert!(svc.services()[0].task_definition().unwrap().ends_with("task-definition/web:2"));
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_failing_hook_rolls_back_to_the_original_task_set() {
    let moto = moto();
    let ecs = service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.ECSAllAtOnce", blue_green(None, 0), &[AutoRollbackEvent::DeploymentFailure]).await;
    let id = deploy(&cd, &appspec("web:2", &[("AfterAllowTestTraffic", "check-test-traffic")])).await;
    let execution = crate::lambda::invoked(&emulator, "AfterAllowTestTraffic").await;
    // The replacement runs beside the original, with no production traffic.
    assert_eq!(
        task_sets(&ecs).await,
        [("web:1".to_string(), "PRIMARY".to_string()), ("web:2".to_string(), "ACTIVE".to_string())]
    );
    let target = ecs_target(&cd, &id).await;
    assert_eq!((weight(&target, TargetLabel::Blue), weight(&target, TargetLabel::Green)), (Some(100.0), Some(0.0)));
    cd.put_lifecycle_event_hook_execution_status()
        .deployment_id(&id)
        .lifecycle_event_hook_execution_id(execution)
        .status(LifecycleEventStatus::Failed)
        .send()
        .await
        .unwrap();
    let failed = wait_complete(&cd, &id).await;
    assert_eq!(failed.status, Some(DeploymentStatus::Failed));
    assert_eq!(failed.error_information.unwrap().code.unwrap().as_str(), "HOOK_EXECUTION_FAILURE");
    let events = ecs_target(&cd, &id).await.lifecycle_events().to_vec();
    let hook = events.iter().find(|e| e.lifecycle_event_name() == Some("AfterAllowTestTraffic")).unwrap();
    assert_eq!(hook.status(), Some(&aws_sdk_codedeploy::types::LifecycleEventStatus::Failed));
    let rollback = failed.rollback_info.unwrap().rollback_deployment_id.unwrap();
    let done = wait_complete(&cd, &rollback).await;
    assert_eq!(done.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(task_sets(&ecs).await, [("web:1".to_string(), "PRIMARY".to_string())], "the replacement is gone");
    let back = ecs_target(&cd, &rollback).await;
    assert_eq!((weight(&back, TargetLabel::Blue), weight(&back, TargetLabel::Green)), (Some(100.0), Some(0.0)));
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_ready_wait_holds_traffic_until_continue_and_the_termination_wait_keeps_the_original() {
    let moto = moto();
    let ecs = service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    // An hour of waiting lasts an hour of test time; nothing here waits it out.
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.ECSAllAtOnce", blue_green(Some(60), 60), &[]).await;
    let id = deploy(&cd, &appspec("web:2", &[])).await;
    let ready = until(&cd, &id, "Ready", |t| t.status() == Some(&TargetStatus::Ready)).await;
    assert_eq!(status(&cd, &id).await, DeploymentStatus::Ready);
    assert_eq!(weight(&ready, TargetLabel::Green), Some(0.0), "no production traffic while Ready");
    let proceed = |wait: DeploymentWaitType| cd.continue_deployment().deployment_id(&id).deployment_wait_type(wait).send();
    let e = proceed(DeploymentWaitType::TerminationWait).await.unwrap_err();
    assert_eq!(e.code(), Some("DeploymentIsNotInReadyStateException"));
    proceed(DeploymentWaitType::ReadyWait).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info.unwrap();
        if info.instance_termination_wait_time_started {
            assert_eq!(info.status, Some(DeploymentStatus::InProgress));
            break;
        }
        assert!(Instant::now() < deadline, "the termination wait never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Traffic moved, the original still stands for the termination wait.
    assert_eq!(
        task_sets(&ecs).await,
        [("web:1".to_string(), "ACTIVE".to_string()), ("web:2".to_string(), "PRIMARY".to_string())]
    );
    proceed(DeploymentWaitType::TerminationWait).await.unwrap();
    assert_eq!(wait_complete(&cd, &id).await.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(task_sets(&ecs).await, [("web:2".to_string(), "PRIMARY".to_string())]);
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_stop_during_the_canary_rolls_traffic_back_to_the_original_task_set() {
    let moto = moto();
    let ecs = service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    // The canary stands five minutes: five minutes of test time.
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.ECSCanary10Percent5Minutes", blue_green(None, 0), &[]).await;
    let id = deploy(&cd, &appspec("web:2", &[])).await;
    let canary = until(&cd, &id, "at the canary", |t| weight(t, TargetLabel::Green) == Some(10.0)).await;
    assert_eq!(weight(&canary, TargetLabel::Blue), Some(90.0));
    cd.stop_deployment().deployment_id(&id).auto_rollback_enabled(true).send().await.unwrap();
    let stopped = wait_complete(&cd, &id).await;
    assert_eq!(stopped.status, Some(DeploymentStatus::Stopped));
    assert_eq!(stopped.error_information.unwrap().code.unwrap().as_str(), "MANUAL_STOP");
    let rollback = stopped.rollback_info.unwrap().rollback_deployment_id.unwrap();
    assert_eq!(wait_complete(&cd, &rollback).await.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(task_sets(&ecs).await, [("web:1".to_string(), "PRIMARY".to_string())]);
    let back = ecs_target(&cd, &rollback).await;
    assert_eq!(weight(&back, TargetLabel::Blue), Some(100.0));
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn ecs_groups_and_appspecs_are_validated_as_codedeploy_does() {
    let moto = moto();
    service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::Ecs).await;
    let emulator = emulator(&moto.endpoint, Duration::from_millis(10));
    let cd = client(&emulator);
    cd.create_application().application_name("shop").compute_platform(ComputePlatform::Ecs).send().await.unwrap();
    let group = |name: &str| {
        cd.create_deployment_group()
            .application_name("shop")
            .deployment_group_name(name)
            .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
            .deployment_style(blue_green_style())
            .blue_green_deployment_configuration(blue_green(None, 0))
    };
    let service = EcsService::builder().service_name(SERVICE).cluster_name(CLUSTER).build();
    let e = group("no-service").load_balancer_info(load_balancer_info(false)).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidECSServiceException"));
    let e = group("in-place")
        .deployment_style(DeploymentStyle::builder().deployment_type(DeploymentType::InPlace).build())
        .ecs_services(service.clone())
        .load_balancer_info(load_balancer_info(false))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidDeploymentStyleException"));
    let one = LoadBalancerInfo::builder()
        .target_group_pair_info_list(
            TargetGroupPairInfo::builder().target_groups(TargetGroupInfo::builder().name("web-blue").build()).build(),
        )
        .build();
    let e = group("one-group").ecs_services(service.clone()).load_balancer_info(one).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidTargetGroupPairException"));
    group("web").ecs_services(service.clone()).load_balancer_info(load_balancer_info(false)).send().await.unwrap();
    let e = group("again").ecs_services(service).load_balancer_info(load_balancer_info(false)).send().await.unwrap_err();
    assert_eq!(e.code(), Some("ECSServiceMappingLimitExceededException"));
    let got = cd.get_deployment_group().application_name("shop").deployment_group_name("web").send().await.unwrap();
    let got = got.deployment_group_info.unwrap();
    assert_eq!(got.deployment_config_name(), Some("CodeDeployDefault.ECSAllAtOnce"));
    assert_eq!(got.ecs_services()[0].service_name(), Some(SERVICE));

    let create = |revision: RevisionLocation| {
        cd.create_deployment().application_name("shop").deployment_group_name("web").revision(revision).send()
    };
    for bad in [
        appspec("", &[]),
        appspec("web:2", &[("Install", "f")]),
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: web:2\n".into(),
        "Resources: [".into(),
    ] {
        let e = create(content(&bad)).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidRevisionException"), "{bad}");
    }
    let s3 = |key: &str, bundle: BundleType| {
        RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(S3Location::builder().bucket("releases").key(key).bundle_type(bundle).build())
            .build()
    };
    let e = create(s3("appspec.yaml", BundleType::Zip)).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidRevisionException"), "an ECS appspec is YAML or JSON");
    let broken = create(s3("missing.yaml", BundleType::Yaml)).await.unwrap().deployment_id.unwrap();
    let failed = wait_complete(&cd, &broken).await;
    assert_eq!(failed.error_information.unwrap().code.unwrap().as_str(), "INVALID_REVISION");

    // A JSON appspec is read too; this service is deployed by ECS itself.
    let json = r#"{"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": "web:2", "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 80}}}}]}"#;
    let id = create(content(json)).await.unwrap().deployment_id.unwrap();
    let failed = wait_complete(&cd, &id).await;
    let error = failed.error_information.unwrap();
    assert_eq!(error.code.unwrap().as_str(), "INVALID_ECS_SERVICE", "{:?}", error.message);
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn ecs_deployments_are_authorized_by_the_reference_scopes() {
    use crate::iam::{ADMIN_KEY, DEPLOYER_KEY, PRINCIPAL, client_as};
    let moto = moto();
    service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    // The Service Authorization Reference scopes CreateDeployment to the
    // deployment group; PutLifecycleEventHookExecutionStatus and
    // ContinueDeployment have no resource type, so only "*" grants them.
    let web = "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:shop/web";
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "codedeploy:CreateDeployment", "Resource": web },
            { "Effect": "Allow", "Action": "codedeploy:PutLifecycleEventHookExecutionStatus", "Resource": "*" },
            { "Effect": "Allow", "Action": "codedeploy:ContinueDeployment", "Resource": web }
        ]
    });
    let policy = codedeploy_emulator::iam::IdentityPolicy::parse(
        &policy.to_string(),
        PRINCIPAL,
        std::collections::BTreeSet::from([ADMIN_KEY.to_string()]),
    )
    .unwrap();
    let emulator = emulator_with_s3(&moto.endpoint, |c| {
        c.minute = Duration::from_secs(60);
        c.ecs_endpoint = Some(moto.endpoint.clone());
        c.identity_policy = Some(policy);
    });
    let (admin, deployer) = (client_as(&emulator, ADMIN_KEY), client_as(&emulator, DEPLOYER_KEY));
    app_and_group(&admin, "CodeDeployDefault.ECSAllAtOnce", blue_green(Some(60), 0), &[]).await;
    let spec = appspec("web:2", &[("BeforeInstall", "check")]);
    let other = deployer.create_deployment().application_name("shop").deployment_group_name("other").revision(content(&spec));
    assert_eq!(other.send().await.unwrap_err().code(), Some("AccessDeniedException"));
    let id = deployer
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("web")
        .revision(content(&spec))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    let execution = crate::lambda::invoked(&emulator, "BeforeInstall").await;
    deployer
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&id)
        .lifecycle_event_hook_execution_id(execution)
        .status(LifecycleEventStatus::Succeeded)
        .send()
        .await
        .unwrap();
    until(&admin, &id, "Ready", |t| t.status() == Some(&TargetStatus::Ready)).await;
    let e = deployer.continue_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    assert!(e.message().unwrap().contains("codedeploy:ContinueDeployment on resource: *"), "{:?}", e.message());
    admin.continue_deployment().deployment_id(&id).send().await.unwrap();
    assert_eq!(wait_complete(&admin, &id).await.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_custom_ecs_canary_sends_its_share_then_everything_and_answers_within_the_model() {
    use aws_sdk_codedeploy::types::{TimeBasedCanary, TrafficRoutingConfig, TrafficRoutingType};
    let moto = moto();
    let ecs = service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    let emulator = emulator(&moto.endpoint, Duration::from_millis(200));
    let cd = client(&emulator);
    let canary = TrafficRoutingConfig::builder()
        .r#type(TrafficRoutingType::TimeBasedCanary)
        .time_based_canary(TimeBasedCanary::builder().canary_percentage(50).canary_interval(1).build())
        .build();
    cd.create_deployment_config()
        .deployment_config_name("Halves")
        .compute_platform(ComputePlatform::Ecs)
        .traffic_routing_config(canary.clone())
        .send()
        .await
        .unwrap();
    let info = cd.get_deployment_config().deployment_config_name("Halves").send().await.unwrap().deployment_config_info.unwrap();
    assert_eq!((info.compute_platform, info.traffic_routing_config), (Some(ComputePlatform::Ecs), Some(canary)));
    app_and_group(&cd, "Halves", blue_green(None, 0), &[]).await;
    let group = cd.get_deployment_group().application_name("shop").deployment_group_name("web").send().await.unwrap();
    assert_eq!(group.deployment_group_info.unwrap().deployment_style, Some(blue_green_style()));
    let id = deploy(&cd, &appspec("web:2", &[])).await;
    let mut seen = Vec::new();
    while status(&cd, &id).await != DeploymentStatus::Succeeded {
        if let Some(w) = weight(&ecs_target(&cd, &id).await, TargetLabel::Green)
            && seen.last() != Some(&w)
        {
            seen.push(w);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen.contains(&50.0), "the canary's share, for its minute: {seen:?}");
    assert!(seen.iter().all(|w| [0.0, 50.0, 100.0].contains(w)), "{seen:?}");
    let one = cd.get_deployment_target().deployment_id(&id).target_id("shop:web").send().await.unwrap();
    let target = one.deployment_target.unwrap();
    assert_eq!(target.deployment_target_type().map(|t| t.as_str()), Some("ECSTarget"));
    assert_eq!(weight(target.ecs_target().unwrap(), TargetLabel::Green), Some(100.0));
    assert_eq!(task_sets(&ecs).await, [("web:2".to_string(), "PRIMARY".to_string())]);
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_failed_allow_test_traffic_fails_as_an_ecs_update_and_rolls_back() {
    use aws_sdk_codedeploy::types::LifecycleEventStatus as S;
    let moto = moto();
    let ecs = service(&moto.endpoint, aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy).await;
    let emulator = emulator(&moto.endpoint, Duration::from_millis(10));
    let cd = client(&emulator);
    let fault = Some(("emulator:fail-event", "AllowTestTraffic"));
    let rollback = [AutoRollbackEvent::DeploymentFailure];
    tagged_app_and_group(&cd, "CodeDeployDefault.ECSAllAtOnce", blue_green(None, 0), &rollback, fault).await;
    let id = deploy(&cd, &appspec("web:2", &[])).await;
    let failed = wait_complete(&cd, &id).await;
    assert_eq!(failed.error_information.unwrap().code.unwrap().as_str(), "ECS_UPDATE_ERROR");
    let target = ecs_target(&cd, &id).await;
    let statuses: Vec<_> = target.lifecycle_events().iter().map(|e| e.status().cloned().unwrap()).collect();
    assert_eq!(statuses, [S::Succeeded, S::Succeeded, S::Succeeded, S::Failed, S::Skipped, S::Skipped, S::Skipped, S::Skipped]);
    let rollback = failed.rollback_info.unwrap().rollback_deployment_id.unwrap();
    assert_eq!(wait_complete(&cd, &rollback).await.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(task_sets(&ecs).await, [("web:1".to_string(), "PRIMARY".to_string())]);
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}
