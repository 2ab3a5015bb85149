//! Lambda deployments on moto's Lambda: the alias's traffic moved as the
//! config says, hook functions waiting for PutLifecycleEventHookExecutionStatus,
//! and a failed hook rolled back by pointing the alias back.

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, BundleType, ComputePlatform, DeploymentStatus,
    LifecycleEventStatus, RevisionLocation, RevisionLocationType, S3Location, TimeBasedLinear, TrafficRoutingConfig,
    TrafficRoutingType,
};
use codedeploy_emulator::Emulator;

use crate::common::{client, emulator_with_s3, moto, wait_complete};

/// A zip holding handler `n`: moto stores the code and runs none of it.
fn code(n: usize) -> Vec<u8> {
    crate::common::zip_of(&[("index.py", &format!("def handler(event, context):\n    return {n}\n"))])
}

fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

/// moto's IAM must know the role a function runs as.
async fn role(endpoint: &str) -> String {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let iam = aws_sdk_iam::Client::from_conf(conf);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let out = iam.create_role().role_name("fn-role").assume_role_policy_document(trust).send().await.unwrap();
    out.role().unwrap().arn().to_string()
}

/// A function with `versions` published versions, or none (a hook), tagged `tags`.
async fn function(lambda: &aws_sdk_lambda::Client, role: &str, name: &str, versions: usize, tags: &[(&str, &str)]) {
    let mut req = lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role)
        .handler("index.handler")
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(code(0).into()).build());
    for (k, v) in tags {
        req = req.tags(*k, *v);
    }
    req.send().await.unwrap();
    // Each version is new code, as a release would publish.
    for n in 1..=versions {
        if n > 1 {
            lambda.update_function_code().function_name(name).zip_file(code(n).into()).send().await.unwrap();
        }
        let published = lambda.publish_version().function_name(name).send().await.unwrap();
        assert_eq!(published.version(), Some(n.to_string().as_str()));
    }
}

/// `checkout` at versions 1 and 2, alias `live` on 1, and the hook functions.
async fn functions(moto: &str) -> aws_sdk_lambda::Client {
    let lambda = lambda_client(moto);
    let role = role(moto).await;
    function(&lambda, &role, "checkout", 2, &[]).await;
    lambda.create_alias().function_name("checkout").name("live").function_version("1").send().await.unwrap();
    function(&lambda, &role, "pre-traffic", 0, &[("emulator:hook-status", "Succeeded")]).await;
    function(&lambda, &role, "post-traffic", 0, &[]).await;
    lambda
}

fn appspec(hooks: &[(&str, &str)]) -> String {
    let mut text = String::from(
        "version: 0.0\nResources:\n  - checkout:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: checkout\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n",
    );
    if !hooks.is_empty() {
        text.push_str("Hooks:\n");
        for (event, function) in hooks {
            text.push_str(&format!("  - {event}: {function}\n"));
        }
    }
    text
}

async fn app_and_group(cd: &Client, config: &str, rollback: bool) {
    cd.create_application().application_name("fn").compute_platform(ComputePlatform::Lambda).send().await.unwrap();
    cd.create_deployment_group()
        .application_name("fn")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
        .deployment_config_name(config)
        .set_auto_rollback_configuration(
            rollback
                .then(|| AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentFailure).build()),
        )
        .send()
        .await
        .unwrap();
}

async fn deploy(cd: &Client, spec: &str) -> String {
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(spec).build())
        .build();
    let out = cd.create_deployment().application_name("fn").deployment_group_name("prod").revision(revision).send().await;
    out.unwrap().deployment_id.unwrap()
}

/// The alias's version and the target's weight, as moto holds them.
async fn alias(lambda: &aws_sdk_lambda::Client) -> (String, Option<f64>) {
    let a = lambda.get_alias().function_name("checkout").name("live").send().await.unwrap();
    let weight = a.routing_config().and_then(|r| r.additional_version_weights()).and_then(|w| w.get("2").copied());
    (a.function_version().unwrap().to_string(), weight)
}

fn emulator(moto: &str, minute: Duration) -> Emulator {
    emulator_with_s3(moto, |c| {
        c.minute = minute;
        c.lambda_endpoint = Some(moto.to_string());
    })
}

async fn lambda_target(cd: &Client, id: &str) -> aws_sdk_codedeploy::types::LambdaTarget {
    let ids = cd.list_deployment_targets().deployment_id(id).send().await.unwrap().target_ids.unwrap();
    let out = cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids)).send().await.unwrap();
    out.deployment_targets()[0].lambda_target.clone().unwrap()
}

#[tokio::test]
async fn a_linear_config_moves_the_alias_step_by_step_then_points_it_at_the_target() {
    let moto = moto();
    let lambda = functions(&moto.endpoint).await;
    // Each 10 % step stands 100 ms: long enough to see every one.
    let emulator = emulator(&moto.endpoint, Duration::from_millis(100));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.LambdaLinear10PercentEvery1Minute", false).await;
    let id = deploy(&cd, &appspec(&[])).await;
    let (seen, status) = weights_until_done(&cd, &lambda, &id).await;
    assert_eq!(status, Some(DeploymentStatus::Succeeded));
    let info = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info.unwrap();
    assert_eq!(info.compute_platform, Some(ComputePlatform::Lambda));
    assert!(seen.len() >= 3, "the weight moved in steps: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen.iter().all(|w| (0.1..=0.9).contains(w) && ((w * 10.0).round() - w * 10.0).abs() < 1e-9), "{seen:?}");
    assert_eq!(alias(&lambda).await, ("2".to_string(), None), "the alias points at the target alone");

    let target = lambda_target(&cd, &id).await;
    assert_eq!(target.target_id(), Some("checkout:live"));
    let info = target.lambda_function_info().unwrap();
    assert_eq!((info.current_version(), info.target_version(), info.target_version_weight()), (Some("1"), Some("2"), 1.0));
    let names: Vec<&str> = target.lifecycle_events().iter().map(|e| e.lifecycle_event_name().unwrap()).collect();
    assert_eq!(names, ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]);
}

#[tokio::test]
async fn a_canary_from_an_appspec_in_s3_sends_its_share_then_everything() {
    let moto = moto();
    let lambda = functions(&moto.endpoint).await;
    let s3 = crate::common::s3(&moto.endpoint);
    crate::common::put(&s3, "releases", "appspec.yaml", appspec(&[]).into_bytes()).await;
    crate::common::put(&s3, "releases", "broken.yaml", b"Resources: [".to_vec()).await;
    let emulator = emulator(&moto.endpoint, Duration::from_millis(40));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.LambdaCanary10Percent5Minutes", true).await;
    let s3_revision = |key: &str, bundle_type: BundleType| {
        RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(S3Location::builder().bucket("releases").key(key).bundle_type(bundle_type).build())
            .build()
    };
    let create = |revision: RevisionLocation| {
        cd.create_deployment().application_name("fn").deployment_group_name("prod").revision(revision).send()
    };
    let e = create(s3_revision("appspec.yaml", BundleType::Zip)).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidRevisionException"), "a Lambda appspec is YAML or JSON");

    let id = create(s3_revision("appspec.yaml", BundleType::Yaml)).await.unwrap().deployment_id.unwrap();
    let (seen, status) = weights_until_done(&cd, &lambda, &id).await;
    assert_eq!(status, Some(DeploymentStatus::Succeeded));
    assert_eq!(seen, [0.1], "the canary's share, for its five minutes");
    assert_eq!(alias(&lambda).await, ("2".to_string(), None));

    let broken = create(s3_revision("broken.yaml", BundleType::Yaml)).await.unwrap().deployment_id.unwrap();
    let failed = wait_complete(&cd, &broken).await;
    assert_eq!(failed.error_information.unwrap().code.unwrap().as_str(), "INVALID_REVISION");
    assert!(failed.rollback_info.is_none(), "nothing to roll back to without versions");
}

/// Follows deployment `id` to its end; the distinct target weights the alias
/// showed on the way, in order.
async fn weights_until_done(cd: &Client, lambda: &aws_sdk_lambda::Client, id: &str) -> (Vec<f64>, Option<DeploymentStatus>) {
    let mut seen = Vec::new();
    loop {
        if let (_, Some(w)) = alias(lambda).await
            && seen.last() != Some(&w)
        {
            seen.push(w);
        }
        let status = cd.get_deployment().deployment_id(id).send().await.unwrap().deployment_info.unwrap().status;
        if matches!(status, Some(DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped)) {
            return (seen, status);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_custom_lambda_config_routes_as_it_says() {
    let moto = moto();
    let lambda = functions(&moto.endpoint).await;
    let emulator = emulator(&moto.endpoint, Duration::from_millis(60));
    let cd = client(&emulator);
    let linear = |percent: i32| {
        TrafficRoutingConfig::builder()
            .r#type(TrafficRoutingType::TimeBasedLinear)
            .time_based_linear(TimeBasedLinear::builder().linear_percentage(percent).linear_interval(1).build())
            .build()
    };
    let create = |name: &'static str, platform: ComputePlatform, routing: TrafficRoutingConfig| {
        cd.create_deployment_config()
            .deployment_config_name(name)
            .compute_platform(platform)
            .traffic_routing_config(routing)
            .send()
    };
    let e = create("Zero", ComputePlatform::Lambda, linear(0)).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidTrafficRoutingConfigurationException"));
    let e = create("OnServer", ComputePlatform::Server, linear(50)).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidTrafficRoutingConfigurationException"));
    create("Halves", ComputePlatform::Lambda, linear(50)).await.unwrap();
    let info = cd.get_deployment_config().deployment_config_name("Halves").send().await.unwrap().deployment_config_info.unwrap();
    assert_eq!((info.compute_platform, info.traffic_routing_config), (Some(ComputePlatform::Lambda), Some(linear(50))));
    assert!(info.minimum_healthy_hosts.is_none());

    app_and_group(&cd, "Halves", false).await;
    let id = deploy(&cd, &appspec(&[])).await;
    assert_eq!(weights_until_done(&cd, &lambda, &id).await, (vec![0.5], Some(DeploymentStatus::Succeeded)));
}

/// Waits for the hook of `event` to be invoked and returns its execution id.
pub async fn invoked(emulator: &Emulator, event: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(h) = emulator.hook_executions().into_iter().find(|h| h.lifecycle_event == event) {
            return h.execution_id;
        }
        assert!(Instant::now() < deadline, "{event} hook never invoked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn hooks_wait_for_their_status_and_a_failed_one_points_the_alias_back() {
    let moto = moto();
    let lambda = functions(&moto.endpoint).await;
    let emulator = emulator(&moto.endpoint, Duration::from_secs(60));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.LambdaAllAtOnce", true).await;
    let id = deploy(&cd, &appspec(&[("BeforeAllowTraffic", "pre-traffic"), ("AfterAllowTraffic", "post-traffic")])).await;
    let report = |execution: String, status: LifecycleEventStatus| {
        cd.put_lifecycle_event_hook_execution_status()
            .deployment_id(&id)
            .lifecycle_event_hook_execution_id(execution)
            .status(status)
            .send()
    };
    let pre = invoked(&emulator, "BeforeAllowTraffic").await;
    assert_eq!(alias(&lambda).await, ("1".to_string(), None), "no traffic moves before the hook reports");
    let e = report(pre.clone(), LifecycleEventStatus::InProgress).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidLifecycleEventHookExecutionStatusException"));
    let e = report("bogus".into(), LifecycleEventStatus::Succeeded).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidLifecycleEventHookExecutionIdException"));
    let out = report(pre.clone(), LifecycleEventStatus::Succeeded).await.unwrap();
    assert_eq!(out.lifecycle_event_hook_execution_id(), Some(pre.as_str()));
    let e = report(pre, LifecycleEventStatus::Succeeded).await.unwrap_err();
    assert_eq!(e.code(), Some("LifecycleEventAlreadyCompletedException"));

    let post = invoked(&emulator, "AfterAllowTraffic").await;
    assert_eq!(alias(&lambda).await, ("2".to_string(), None), "traffic moved before AfterAllowTraffic");
    report(post, LifecycleEventStatus::Failed).await.unwrap();
    let failed = wait_complete(&cd, &id).await;
    assert_eq!(failed.status, Some(DeploymentStatus::Failed));
    assert_eq!(failed.error_information.unwrap().code.unwrap().as_str(), "HOOK_EXECUTION_FAILURE");
    let rollback = failed.rollback_info.unwrap().rollback_deployment_id.unwrap();
    assert_eq!(wait_complete(&cd, &rollback).await.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(alias(&lambda).await, ("1".to_string(), None), "the rollback points the alias back");
}

#[tokio::test]
async fn a_hook_nobody_calls_back_is_decided_by_its_tag_when_the_hour_is_up() {
    let moto = moto();
    let lambda = functions(&moto.endpoint).await;
    // An hour of hook wait lasts 300 ms here.
    let emulator = emulator(&moto.endpoint, Duration::from_millis(5));
    let cd = client(&emulator);
    app_and_group(&cd, "CodeDeployDefault.LambdaAllAtOnce", false).await;
    let tagged = deploy(&cd, &appspec(&[("BeforeAllowTraffic", "pre-traffic")])).await;
    assert_eq!(wait_complete(&cd, &tagged).await.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(alias(&lambda).await.0, "2");

    lambda.update_alias().function_name("checkout").name("live").function_version("1").send().await.unwrap();
    let untagged = deploy(&cd, &appspec(&[("BeforeAllowTraffic", "post-traffic")])).await;
    let done = wait_complete(&cd, &untagged).await;
    assert_eq!(done.status, Some(DeploymentStatus::Failed), "a hook that never reports fails");
    assert_eq!(alias(&lambda).await.0, "1", "no traffic moved");
}

/// PutLifecycleEventHookExecutionStatus in success and in error, for the
/// test that every operation answers within the model.
pub async fn drive_hook_status(cd: &Client, emulator: &Emulator, moto: &str) {
    functions(moto).await;
    app_and_group(cd, "CodeDeployDefault.LambdaAllAtOnce", false).await;
    let id = deploy(cd, &appspec(&[("BeforeAllowTraffic", "post-traffic")])).await;
    let execution = invoked(emulator, "BeforeAllowTraffic").await;
    let report = cd.put_lifecycle_event_hook_execution_status().deployment_id(&id);
    report.clone().lifecycle_event_hook_execution_id("bogus").status(LifecycleEventStatus::Succeeded).send().await.unwrap_err();
    report.lifecycle_event_hook_execution_id(execution).status(LifecycleEventStatus::Succeeded).send().await.unwrap();
    assert_eq!(wait_complete(cd, &id).await.status, Some(DeploymentStatus::Succeeded));
}
