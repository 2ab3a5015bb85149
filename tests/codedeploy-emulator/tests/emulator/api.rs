//! Shapes and errors of the resource operations, through the SDK client.

use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::operation::create_application::CreateApplicationError;
use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError;
use aws_sdk_codedeploy::operation::get_application::GetApplicationError;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentError;
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupError;
use aws_sdk_codedeploy::types::{AutoRollbackConfiguration, AutoRollbackEvent, DeploymentStatus, FileExistsBehavior};
use codedeploy_emulator::Emulator;

use crate::common::{app_and_group, client, config, create_deployment, s3_revision, wait_complete};

fn code<E: ProvideErrorMetadata>(err: &E) -> String {
    err.code().unwrap_or("<none>").to_string()
}

#[tokio::test]
async fn applications_are_created_read_and_duplicates_refused() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    let created = cd.create_application().application_name("shop").send().await.unwrap();
    let app = cd.get_application().application_name("shop").send().await.unwrap().application.unwrap();
    assert_eq!(app.application_id, created.application_id);
    assert_eq!(app.application_name.as_deref(), Some("shop"));
    assert!(app.create_time.is_some());
    assert_eq!(app.compute_platform.unwrap().as_str(), "Server");

    let dup = cd.create_application().application_name("shop").send().await.unwrap_err();
    assert!(matches!(dup.into_service_error(), CreateApplicationError::ApplicationAlreadyExistsException(_)));
    let missing = cd.get_application().application_name("nope").send().await.unwrap_err();
    assert!(matches!(missing.into_service_error(), GetApplicationError::ApplicationDoesNotExistException(_)));
    let unnamed = cd.get_application().send().await.unwrap_err();
    assert_eq!(code(&unnamed), "ApplicationNameRequiredException");

    let listed = cd.list_applications().send().await.unwrap();
    assert_eq!(listed.applications(), ["shop"]);
    let batch = cd.batch_get_applications().application_names("shop").send().await.unwrap();
    assert_eq!(batch.applications_info().len(), 1);
}

#[tokio::test]
async fn deployment_groups_report_their_settings_and_instances() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    cd.create_application().application_name("shop").send().await.unwrap();
    let created = cd
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .deployment_config_name("CodeDeployDefault.AllAtOnce")
        .auto_rollback_configuration(
            AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentFailure).build(),
        )
        .ec2_tag_filters(
            aws_sdk_codedeploy::types::Ec2TagFilter::builder()
                .key("app")
                .value("shop")
                .r#type(aws_sdk_codedeploy::types::Ec2TagFilterType::KeyAndValue)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let info = cd
        .get_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .send()
        .await
        .unwrap()
        .deployment_group_info
        .unwrap();
    assert_eq!(info.deployment_group_id, created.deployment_group_id);
    assert_eq!(info.deployment_config_name.as_deref(), Some("CodeDeployDefault.AllAtOnce"));
    assert_eq!(info.service_role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/cd"));
    assert_eq!(info.ec2_tag_filters().len(), 1, "unmodelled members are echoed back");
    let rollback = info.auto_rollback_configuration.unwrap();
    assert!(rollback.enabled);
    assert_eq!(rollback.events(), [AutoRollbackEvent::DeploymentFailure]);
    assert!(info.last_successful_deployment.is_none());

    let dup = cd
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&dup), "DeploymentGroupAlreadyExistsException");
    let no_role = cd.create_deployment_group().application_name("shop").deployment_group_name("x").send().await.unwrap_err();
    assert_eq!(code(&no_role), "RoleRequiredException");
    let missing = cd.get_deployment_group().application_name("shop").deployment_group_name("nope").send().await.unwrap_err();
    assert!(matches!(missing.into_service_error(), GetDeploymentGroupError::DeploymentGroupDoesNotExistException(_)));
    let no_app = cd
        .create_deployment_group()
        .application_name("ghost")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_app), "ApplicationDoesNotExistException");
    let groups = cd.list_deployment_groups().application_name("shop").send().await.unwrap();
    assert_eq!(groups.deployment_groups(), ["prod"]);
}

#[tokio::test]
async fn create_deployment_validates_its_input() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let no_revision = cd.create_deployment().application_name("shop").deployment_group_name("prod").send().await.unwrap_err();
    assert!(matches!(no_revision.into_service_error(), CreateDeploymentError::RevisionRequiredException(_)));
    let no_group = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("staging")
        .revision(s3_revision("b", "k.zip", None))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(no_group.into_service_error(), CreateDeploymentError::DeploymentGroupDoesNotExistException(_)));
    let no_app = cd
        .create_deployment()
        .application_name("ghost")
        .deployment_group_name("prod")
        .revision(s3_revision("b", "k.zip", None))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(no_app.into_service_error(), CreateDeploymentError::ApplicationDoesNotExistException(_)));
    let no_bucket = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("", "k.zip", None))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(no_bucket.into_service_error(), CreateDeploymentError::InvalidRevisionException(_)));
    let bad_config = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .deployment_config_name("Nope")
        .revision(s3_revision("b", "k.zip", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_config), "DeploymentConfigDoesNotExistException");
}

#[tokio::test]
async fn deployment_ids_are_validated_before_lookup() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    let bad = cd.get_deployment().deployment_id("not-an-id").send().await.unwrap_err();
    assert!(matches!(bad.into_service_error(), GetDeploymentError::InvalidDeploymentIdException(_)));
    let unknown = cd.get_deployment().deployment_id("d-ABCDEF123").send().await.unwrap_err();
    assert!(matches!(unknown.into_service_error(), GetDeploymentError::DeploymentDoesNotExistException(_)));
    let none = cd.get_deployment().send().await.unwrap_err();
    assert_eq!(code(&none), "DeploymentIdRequiredException");
    let stop = cd.stop_deployment().deployment_id("d-ABCDEF123").send().await.unwrap_err();
    assert_eq!(code(&stop), "DeploymentDoesNotExistException");
    // BatchGetDeployments leaves unknown ids out instead of failing.
    let batch = cd.batch_get_deployments().deployment_ids("d-ABCDEF123").send().await.unwrap();
    assert!(batch.deployments_info().is_empty());
}

#[tokio::test]
async fn deployment_info_echoes_what_was_asked() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let id = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("bucket", "app.zip", Some("abc123")))
        .description("release 42")
        .file_exists_behavior(FileExistsBehavior::Overwrite)
        .auto_rollback_configuration(
            AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentStopOnRequest).build(),
        )
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    assert!(id.starts_with("d-") && id.len() == 11, "{id}");
    let info = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info.unwrap();
    assert_eq!(info.application_name.as_deref(), Some("shop"));
    assert_eq!(info.deployment_group_name.as_deref(), Some("prod"));
    assert_eq!(info.deployment_config_name.as_deref(), Some("CodeDeployDefault.OneAtATime"));
    assert_eq!(info.description.as_deref(), Some("release 42"));
    assert_eq!(info.creator.unwrap().as_str(), "user");
    assert_eq!(info.file_exists_behavior, Some(FileExistsBehavior::Overwrite));
    let s3 = info.revision.unwrap().s3_location.unwrap();
    assert_eq!(s3.bucket.as_deref(), Some("bucket"));
    assert_eq!(s3.e_tag.as_deref(), Some("abc123"));
    assert!(info.create_time.is_some());
    assert!(info.deployment_overview.is_some());
    assert!(info.auto_rollback_configuration.unwrap().enabled);
    wait_complete(&cd, &id).await;
}

#[tokio::test]
async fn second_deployment_to_a_busy_group_is_refused() {
    let mut cfg = config();
    cfg.step_delay = std::time::Duration::from_millis(200);
    let emulator = Emulator::start(cfg).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let create = || {
        cd.create_deployment()
            .application_name("shop")
            .deployment_group_name("prod")
            .revision(s3_revision("bucket", "app.zip", None))
            .send()
    };
    let first = create().await.unwrap().deployment_id.unwrap();
    let second = create().await.unwrap_err();
    assert!(matches!(second.into_service_error(), CreateDeploymentError::DeploymentLimitExceededException(_)));
    wait_complete(&cd, &first).await;
    let third = create().await.unwrap().deployment_id.unwrap();
    wait_complete(&cd, &third).await;
}

#[tokio::test]
async fn list_deployments_filters_and_pages_newest_first() {
    let mut cfg = config();
    cfg.page_size = 2;
    cfg.step_delay = std::time::Duration::ZERO;
    let emulator = Emulator::start(cfg).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    cd.create_deployment_group()
        .application_name("shop")
        .deployment_group_name("staging")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .send()
        .await
        .unwrap();
    let mut prod = Vec::new();
    for _ in 0..3 {
        let id = create_deployment(&cd, "prod", "bucket", "app.zip", None).await;
        wait_complete(&cd, &id).await;
        prod.push(id);
    }
    let staging = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("staging")
        .revision(s3_revision("bucket", "app.zip", None))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    wait_complete(&cd, &staging).await;

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = cd
            .list_deployments()
            .application_name("shop")
            .deployment_group_name("prod")
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        assert!(page.deployments().len() <= 2);
        seen.extend(page.deployments().iter().cloned());
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    prod.reverse();
    assert_eq!(seen, prod, "newest first, all pages, only the group's");

    let all = cd.list_deployments().into_paginator().items().send().collect::<Vec<_>>().await;
    assert_eq!(all.len(), 4);
    let failed = cd
        .list_deployments()
        .include_only_statuses(DeploymentStatus::Failed)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(failed.len(), 4, "no S3 is reachable, so every deployment failed");
    let none = cd.list_deployments().include_only_statuses(DeploymentStatus::Succeeded).send().await.unwrap();
    assert!(none.deployments().is_empty());
    let half = cd.list_deployments().application_name("shop").send().await.unwrap_err();
    assert_eq!(code(&half), "DeploymentGroupNameRequiredException");
    let bad_token = cd.list_deployments().next_token("garbage").send().await.unwrap_err();
    assert_eq!(code(&bad_token), "InvalidNextTokenException");
}
