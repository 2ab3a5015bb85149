//! Deployment targets and instances: filters, pagination, batch limits.

// The instance operations are deprecated in favour of targets, but callers still use them.
#![allow(deprecated)]

use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{InstanceStatus, TargetFilterName, TargetStatus};
use codedeploy_emulator::Emulator;

use crate::common::{app_and_group, client, config, create_deployment, wait_complete};

#[tokio::test]
async fn targets_filter_by_status_page_and_limit_batches() {
    let mut cfg = config();
    cfg.page_size = 10;
    let emulator = Emulator::start(cfg).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 30, &[]).await;
    // No S3 is reachable: the first instance fails and the other 29 are skipped.
    let id = create_deployment(&cd, "prod", "releases", "app.zip", None).await;
    wait_complete(&cd, &id).await;

    let first = cd.list_deployment_targets().deployment_id(&id).send().await.unwrap();
    assert_eq!(first.target_ids().len(), 10);
    assert!(first.next_token.is_some());
    let all: Vec<String> = crate::common::all_target_ids(&cd, &id).await;
    assert_eq!(all.len(), 30);
    let failed = cd
        .list_deployment_targets()
        .deployment_id(&id)
        .target_filters(TargetFilterName::TargetStatus, vec!["Failed".to_string()])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.target_ids().len(), 1);
    let bad_filter = cd
        .list_deployment_targets()
        .deployment_id(&id)
        .target_filters(TargetFilterName::from("Colour"), vec!["Blue".to_string()])
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad_filter.code(), Some("InvalidTargetFilterNameException"));

    let too_many =
        cd.batch_get_deployment_targets().deployment_id(&id).set_target_ids(Some(all[..26].to_vec())).send().await.unwrap_err();
    assert_eq!(too_many.code(), Some("DeploymentTargetListSizeExceededException"));
    let ok = cd.batch_get_deployment_targets().deployment_id(&id).set_target_ids(Some(all[..25].to_vec())).send().await.unwrap();
    assert_eq!(ok.deployment_targets().len(), 25);
    let one = cd.get_deployment_target().deployment_id(&id).target_id(&failed.target_ids()[0]).send().await.unwrap();
    let target = one.deployment_target.unwrap();
    assert_eq!(target.deployment_target_type.unwrap().as_str(), "InstanceTarget");
    let instance = target.instance_target.unwrap();
    assert_eq!(instance.status, Some(TargetStatus::Failed));
    assert!(instance.target_arn.unwrap().starts_with("arn:aws:ec2:us-east-1:"));
    let unknown = cd.get_deployment_target().deployment_id(&id).target_id("i-00000000000000000").send().await.unwrap_err();
    assert_eq!(unknown.code(), Some("DeploymentTargetDoesNotExistException"));

    let skipped = cd
        .list_deployment_instances()
        .deployment_id(&id)
        .instance_status_filter(InstanceStatus::Skipped)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(skipped.len(), 29);
    let summaries = cd
        .batch_get_deployment_instances()
        .deployment_id(&id)
        .set_instance_ids(Some(skipped[..3].to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(summaries.instances_summary().len(), 3);
    assert!(summaries.instances_summary().iter().all(|s| s.status == Some(InstanceStatus::Skipped)));
    let single = cd.get_deployment_instance().deployment_id(&id).instance_id(&skipped[0]).send().await.unwrap();
    let single = single.instance_summary.unwrap();
    assert_eq!(single.lifecycle_events().len(), 7);

    // The deprecated view answers with the instance's ARN, as AWS's own
    // example shows, while the list and the lookups use bare ids.
    let arn = |i: &str| format!("arn:aws:ec2:us-east-1:123456789012:instance/{i}");
    assert!(skipped.iter().all(|i| i.starts_with("i-")), "{skipped:?}");
    assert_eq!(single.instance_id, Some(arn(&skipped[0])));
    let got: Vec<String> = summaries.instances_summary().iter().filter_map(|s| s.instance_id.clone()).collect();
    assert_eq!(got, skipped[..3].iter().map(|i| arn(i)).collect::<Vec<_>>());
    // The target view keeps the bare id as targetId, the ARN as targetArn.
    let t = cd.get_deployment_target().deployment_id(&id).target_id(&skipped[0]).send().await.unwrap();
    let t = t.deployment_target.unwrap().instance_target.unwrap();
    assert_eq!(t.target_id.as_deref(), Some(skipped[0].as_str()));
    assert_eq!(t.target_arn, Some(arn(&skipped[0])));
}

#[tokio::test]
async fn events_skipped_after_a_failure_carry_an_end_time() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 2, &[]).await;
    // No S3 is reachable: the first instance fails DownloadBundle, the second is skipped.
    let id = create_deployment(&cd, "prod", "releases", "app.zip", None).await;
    wait_complete(&cd, &id).await;
    let ids = crate::common::all_target_ids(&cd, &id).await;
    let targets = cd.batch_get_deployment_targets().deployment_id(&id).set_target_ids(Some(ids)).send().await.unwrap();
    let instances: Vec<_> = targets.deployment_targets().iter().map(|t| t.instance_target.clone().unwrap()).collect();
    let failed = instances.iter().find(|i| i.status == Some(TargetStatus::Failed)).unwrap();
    let events = failed.lifecycle_events();
    let failed_end = events[1].end_time.unwrap().as_secs_f64();
    assert_eq!(events[1].status.as_ref().unwrap().as_str(), "Failed");
    for e in &events[2..] {
        assert_eq!(e.status.as_ref().unwrap().as_str(), "Skipped");
        // Like the AWS CLI's example: an endTime, no startTime, no diagnostics.
        let end = e.end_time.expect("a skipped event after a failure has an endTime").as_secs_f64();
        assert!(end >= failed_end && end - failed_end < 5.0, "{end} vs {failed_end}");
        assert!(e.start_time.is_none() && e.diagnostics.is_none(), "{e:?}");
    }
    // An instance the deployment never reached has bare Skipped events.
    let never = instances.iter().find(|i| i.status == Some(TargetStatus::Skipped)).unwrap();
    for e in never.lifecycle_events() {
        assert_eq!(e.status.as_ref().unwrap().as_str(), "Skipped");
        assert!(e.start_time.is_none() && e.end_time.is_none() && e.diagnostics.is_none(), "{e:?}");
    }
}
