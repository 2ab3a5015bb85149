//! The emulator held to CodeDeploy's service model, the one the SDKs are
//! generated from (botocore's copy, pinned by scripts/setup-venv).
//!
//! Every emulator in these tests checks each answer against the model (see
//! `common::config`) and panics on drop if one did not fit. The test here
//! makes sure that covers every operation, in success and in error, and
//! that the check is real: the model read is botocore's, and it refuses an
//! answer that drifted.

// The instance operations are deprecated in favour of targets, but callers still use them.
#![allow(deprecated)]

use std::time::Duration;

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, MinimumHealthyHosts, MinimumHealthyHostsType, RevisionLocation,
    TargetFilterName,
};
use codedeploy_emulator::service_model::{ServiceModel, botocore_version_in};
use serde_json::json;

use crate::common::{
    app_and_group, client, create_deployment, emulator_with_s3, moto, put, s3, s3_revision, service_model, venv, wait_complete,
    zip_of,
};

#[test]
fn the_model_is_botocores_codedeploy_model() {
    let path = service_model();
    let model = ServiceModel::load(&path).unwrap();
    assert!(path.to_string_lossy().contains("botocore/data/codedeploy/2014-10-06/service-2.json"), "{}", path.display());
    assert!(botocore_version_in(&venv()).is_some(), "botocore's version is readable for messages");
    // The real model refuses drift of each kind the emulator could make.
    let summary = |extra: serde_json::Value| {
        let mut s = json!({ "deploymentId": "d-ABCDEFGHI", "instanceId": "arn:aws:ec2:us-east-1:1:instance/i-1", "status": "Failed", "lifecycleEvents": [] });
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "instanceSummary": s })
    };
    assert!(model.check_output("GetDeploymentInstance", &summary(json!({}))).is_empty());
    let drift = [
        json!({ "instanceType": "Purple" }),
        json!({ "colour": "red" }),
        json!({ "lastUpdatedAt": "yesterday" }),
        json!({ "lifecycleEvents": [{ "lifecycleEventName": "Install", "status": "Done" }] }),
        json!({ "lifecycleEvents": [{ "diagnostics": { "errorCode": "Oops" } }] }),
    ];
    for extra in drift {
        let found = model.check_output("GetDeploymentInstance", &summary(extra.clone()));
        assert!(!found.is_empty(), "the model should refuse {extra}");
    }
    // The one documented exception: OneAtATime's MOST_CONCURRENCY, which the
    // model's enum lacks but its own documentation (and AWS's example) shows.
    let one_at_a_time = json!({ "deploymentConfigInfo": { "minimumHealthyHosts": { "type": "MOST_CONCURRENCY", "value": 1 } } });
    assert!(model.check_output("GetDeploymentConfig", &one_at_a_time).is_empty());
    let doc = std::fs::read(&path).unwrap();
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(doc.as_slice()), &mut text).unwrap();
    } else {
        text = String::from_utf8(doc).unwrap();
    }
    assert!(
        text.contains("returns a minimum healthy instance type of MOST_CONCURRENCY"),
        "the exception is still documented in the model"
    );
    assert!(
        !model
            .check_output(
                "GetDeploymentConfig",
                &json!({ "deploymentConfigInfo": { "minimumHealthyHosts": { "type": "MOST_HOSTS" } } })
            )
            .is_empty()
    );
    assert!(!model.check_output("ListApplications", &json!({ "applications": "shop" })).is_empty());
    assert!(
        !model
            .check_error(
                Some("GetApplication"),
                "DeploymentDoesNotExistException",
                &json!({ "__type": "DeploymentDoesNotExistException", "message": "m" })
            )
            .is_empty()
    );
}

#[tokio::test]
async fn every_operation_answers_within_the_model_in_success_and_error() {
    // Deployments here cannot fetch their bundles (moto has no such bucket):
    // they fail at DownloadBundle, which gives failed and skipped instances
    // to look at.
    // Steps slow enough that a StopDeployment sent right after
    // CreateDeployment finds it still running.
    // moto holds only the blue/green bundle that ContinueDeployment needs, and
    // the Lambda function whose hook PutLifecycleEventHookExecutionStatus reports.
    let moto = moto();
    let emulator = emulator_with_s3(&moto.endpoint, |c| {
        c.step_delay = Duration::from_millis(100);
        c.lambda_endpoint = Some(moto.endpoint.clone());
    });
    let cd = client(&emulator);
    drive_every_operation(&cd).await;
    crate::bluegreen::drive_continue(&cd, &moto.endpoint).await;
    crate::lambda::drive_hook_status(&cd, &emulator, &moto.endpoint).await;
    let answered = emulator.answered_operations();
    for op in codedeploy_emulator::ops::OPERATIONS {
        let (ok, err) = answered.get(*op).copied().unwrap_or_default();
        assert!(ok > 0, "{op} never answered successfully: {answered:?}");
        assert!(err > 0, "{op} never answered an error: {answered:?}");
    }
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn real_deployments_answer_within_the_model() {
    // Hooks that succeed and fail, a rollback, a stop: the answers ferry reads.
    let moto = moto();
    let s3 = s3(&moto.endpoint);
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\nhooks:\n  AfterInstall:\n    - location: check.sh\n      timeout: 30\n";
    put(&s3, "releases", "good.zip", zip_of(&[("appspec.yml", appspec), ("app/v", "1"), ("check.sh", "#!/bin/bash\necho ok\n")]))
        .await;
    put(
        &s3,
        "releases",
        "bad.zip",
        zip_of(&[("appspec.yml", appspec), ("app/v", "2"), ("check.sh", "#!/bin/bash\necho out\necho err >&2\nexit 1\n")]),
    )
    .await;
    let emulator = emulator_with_s3(&moto.endpoint, |c| c.step_delay = Duration::from_millis(20));
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 3, &[]).await;
    let good = create_deployment(&cd, "prod", "releases", "good.zip", None).await;
    wait_complete(&cd, &good).await;
    let bad = cd
        .create_deployment()
        .application_name("shop")
        .deployment_group_name("prod")
        .revision(s3_revision("releases", "bad.zip", None))
        .file_exists_behavior(aws_sdk_codedeploy::types::FileExistsBehavior::Overwrite)
        .auto_rollback_configuration(
            AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentFailure).build(),
        )
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    // Read everything while it runs and after it ends.
    loop {
        look_at(&cd, &bad).await;
        let info = cd.get_deployment().deployment_id(&bad).send().await.unwrap().deployment_info.unwrap();
        if info.complete_time.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let rollback = wait_complete(&cd, &bad).await.rollback_info.unwrap().rollback_deployment_id.unwrap();
    let stopped = {
        wait_complete(&cd, &rollback).await;
        let id = create_deployment(&cd, "prod", "releases", "good.zip", None).await;
        cd.stop_deployment().deployment_id(&id).send().await.unwrap();
        wait_complete(&cd, &id).await;
        id
    };
    for id in [&good, &bad, &rollback, &stopped] {
        look_at(&cd, id).await;
    }
    cd.get_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap();
    cd.list_application_revisions().application_name("shop").send().await.unwrap();
    assert_eq!(emulator.model_violations(), Vec::<String>::new());
}

/// Reads a deployment through every view ferry might use.
async fn look_at(cd: &Client, id: &str) {
    cd.get_deployment().deployment_id(id).send().await.unwrap();
    cd.batch_get_deployments().deployment_ids(id).send().await.unwrap();
    // A deployment that has not started has no targets to list (CodeDeploy
    // answers DeploymentNotStartedException); any other failure is a
    // finding, not a reason to look at less.
    let listed = match cd.list_deployment_targets().deployment_id(id).send().await {
        Ok(listed) => listed,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_deployment_not_started_exception()) => return,
        Err(e) => panic!("ListDeploymentTargets of {id}: {e:?}"),
    };
    let ids = listed.target_ids().to_vec();
    if ids.is_empty() {
        return;
    }
    cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids.clone())).send().await.unwrap();
    cd.get_deployment_target().deployment_id(id).target_id(&ids[0]).send().await.unwrap();
    cd.list_deployment_instances().deployment_id(id).send().await.unwrap();
    cd.batch_get_deployment_instances().deployment_id(id).set_instance_ids(Some(ids.clone())).send().await.unwrap();
    cd.get_deployment_instance().deployment_id(id).instance_id(&ids[0]).send().await.unwrap();
}

/// Calls every operation the emulator implements at least once with
/// success and once with an error.
async fn drive_every_operation(cd: &Client) {
    // Applications.
    cd.create_application().application_name("shop").send().await.unwrap();
    cd.create_application().application_name("shop").send().await.unwrap_err();
    cd.create_application().application_name("spare").send().await.unwrap();
    cd.get_application().application_name("shop").send().await.unwrap();
    cd.get_application().application_name("nope").send().await.unwrap_err();
    cd.list_applications().send().await.unwrap();
    cd.list_applications().next_token("bogus").send().await.unwrap_err();
    cd.batch_get_applications().application_names("shop").send().await.unwrap();
    cd.batch_get_applications().application_names("nope").send().await.unwrap_err();
    cd.delete_application().application_name("spare").send().await.unwrap();
    cd.delete_application().send().await.unwrap_err();

    // Deployment configs.
    let hosts = MinimumHealthyHosts::builder().r#type(MinimumHealthyHostsType::HostCount).value(1).build();
    cd.create_deployment_config().deployment_config_name("Two").minimum_healthy_hosts(hosts.clone()).send().await.unwrap();
    cd.create_deployment_config().deployment_config_name("Two").minimum_healthy_hosts(hosts.clone()).send().await.unwrap_err();
    cd.create_deployment_config().deployment_config_name("Spare").minimum_healthy_hosts(hosts).send().await.unwrap();
    cd.get_deployment_config().deployment_config_name("CodeDeployDefault.OneAtATime").send().await.unwrap();
    cd.get_deployment_config().deployment_config_name("Two").send().await.unwrap();
    cd.get_deployment_config().deployment_config_name("Nope").send().await.unwrap_err();
    cd.list_deployment_configs().send().await.unwrap();
    cd.list_deployment_configs().next_token("bogus").send().await.unwrap_err();
    cd.delete_deployment_config().deployment_config_name("Spare").send().await.unwrap();
    cd.delete_deployment_config().deployment_config_name("CodeDeployDefault.AllAtOnce").send().await.unwrap_err();

    // Deployment groups (with the optional members echoed back).
    cd.create_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .deployment_config_name("CodeDeployDefault.OneAtATime")
        .auto_rollback_configuration(
            AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentFailure).build(),
        )
        .tags(aws_sdk_codedeploy::types::Tag::builder().key("emulator:instances").value("3").build())
        .send()
        .await
        .unwrap();
    cd.create_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap_err();
    cd.create_deployment_group()
        .application_name("shop")
        .deployment_group_name("spare")
        .service_role_arn("arn:aws:iam::123456789012:role/cd")
        .send()
        .await
        .unwrap();
    cd.get_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap();
    cd.get_deployment_group().application_name("shop").deployment_group_name("nope").send().await.unwrap_err();
    cd.list_deployment_groups().application_name("shop").send().await.unwrap();
    cd.list_deployment_groups().application_name("nope").send().await.unwrap_err();
    cd.batch_get_deployment_groups()
        .application_name("shop")
        .deployment_group_names("prod")
        .deployment_group_names("nope")
        .send()
        .await
        .unwrap();
    cd.batch_get_deployment_groups().application_name("nope").deployment_group_names("prod").send().await.unwrap_err();
    cd.delete_deployment_group().application_name("shop").deployment_group_name("spare").send().await.unwrap();
    cd.delete_deployment_group().application_name("shop").send().await.unwrap_err();

    // Revisions.
    let revision: RevisionLocation = s3_revision("releases", "v1.zip", Some("abc"));
    cd.register_application_revision()
        .application_name("shop")
        .revision(revision.clone())
        .description("v1")
        .send()
        .await
        .unwrap();
    cd.register_application_revision().application_name("shop").send().await.unwrap_err();
    cd.get_application_revision().application_name("shop").revision(revision.clone()).send().await.unwrap();
    cd.get_application_revision()
        .application_name("shop")
        .revision(s3_revision("releases", "v9.zip", None))
        .send()
        .await
        .unwrap_err();
    cd.list_application_revisions().application_name("shop").send().await.unwrap();
    cd.list_application_revisions().application_name("nope").send().await.unwrap_err();
    cd.batch_get_application_revisions().application_name("shop").revisions(revision.clone()).send().await.unwrap();
    cd.batch_get_application_revisions().application_name("nope").revisions(revision).send().await.unwrap_err();

    // Deployments, targets and instances.
    let id = create_deployment(cd, "prod", "releases", "v1.zip", None).await;
    cd.create_deployment().application_name("shop").deployment_group_name("prod").send().await.unwrap_err();
    cd.get_deployment().deployment_id(&id).send().await.unwrap();
    cd.get_deployment().deployment_id("d-NOPE").send().await.unwrap_err();
    cd.batch_get_deployments().deployment_ids(&id).send().await.unwrap();
    cd.batch_get_deployments().deployment_ids("bogus").send().await.unwrap_err();
    cd.list_deployments().application_name("shop").deployment_group_name("prod").send().await.unwrap();
    cd.list_deployments().application_name("shop").send().await.unwrap_err();
    let info = wait_complete(cd, &id).await;
    // A rollback was not possible (nothing succeeded before): the message says so.
    assert!(info.rollback_info.is_some());
    cd.stop_deployment().deployment_id(&id).send().await.unwrap_err();
    let running = create_deployment(cd, "prod", "releases", "v1.zip", None).await;
    cd.stop_deployment().deployment_id(&running).send().await.unwrap();
    wait_complete(cd, &running).await;
    cd.list_deployment_targets().deployment_id("bogus").send().await.unwrap_err();

    let ids = cd.list_deployment_targets().deployment_id(&id).send().await.unwrap().target_ids().to_vec();
    cd.list_deployment_targets()
        .deployment_id(&id)
        .target_filters(TargetFilterName::TargetStatus, vec!["Skipped".into()])
        .send()
        .await
        .unwrap();
    cd.batch_get_deployment_targets().deployment_id(&id).set_target_ids(Some(ids.clone())).send().await.unwrap();
    cd.batch_get_deployment_targets().deployment_id(&id).send().await.unwrap_err();
    cd.get_deployment_target().deployment_id(&id).target_id(&ids[0]).send().await.unwrap();
    cd.get_deployment_target().deployment_id(&id).target_id("i-00000000000000000").send().await.unwrap_err();
    cd.list_deployment_instances().deployment_id(&id).send().await.unwrap();
    cd.list_deployment_instances().deployment_id(&id).instance_type_filter("Purple".into()).send().await.unwrap_err();
    cd.batch_get_deployment_instances()
        .deployment_id(&id)
        .set_instance_ids(Some(ids.clone()))
        .instance_ids("i-00000000000000000")
        .send()
        .await
        .unwrap();
    cd.batch_get_deployment_instances().deployment_id(&id).send().await.unwrap_err();
    cd.get_deployment_instance().deployment_id(&id).instance_id(&ids[0]).send().await.unwrap();
    cd.get_deployment_instance().deployment_id(&id).instance_id("i-00000000000000000").send().await.unwrap_err();
    cd.get_deployment_group().application_name("shop").deployment_group_name("prod").send().await.unwrap();
}
