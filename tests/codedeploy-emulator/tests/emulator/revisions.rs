//! Application revisions: registered explicitly and by deployments.

use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{ApplicationRevisionSortBy, ListStateFilterAction, SortOrder};
use codedeploy_emulator::Emulator;

use crate::common::{app_and_group, client, config, create_deployment, s3_revision, wait_complete};

#[tokio::test]
async fn revisions_are_registered_listed_and_linked_to_their_deployments() {
    let emulator = Emulator::start(config()).unwrap();
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    cd.register_application_revision()
        .application_name("shop")
        .description("first cut")
        .revision(s3_revision("releases", "v1.zip", None))
        .send()
        .await
        .unwrap();
    let got = cd
        .get_application_revision()
        .application_name("shop")
        .revision(s3_revision("releases", "v1.zip", None))
        .send()
        .await
        .unwrap();
    let info = got.revision_info.unwrap();
    assert_eq!(info.description.as_deref(), Some("first cut"));
    assert!(info.register_time.is_some() && info.first_used_time.is_none());
    assert!(info.deployment_groups().is_empty());

    let id = create_deployment(&cd, "prod", "releases", "v2.zip", None).await;
    wait_complete(&cd, &id).await;

    let all = cd.list_application_revisions().application_name("shop").send().await.unwrap();
    let keys: Vec<_> = all.revisions().iter().map(|r| r.s3_location.clone().unwrap().key.unwrap()).collect();
    assert_eq!(keys, ["v1.zip", "v2.zip"]);
    let newest_first = cd
        .list_application_revisions()
        .application_name("shop")
        .sort_by(ApplicationRevisionSortBy::RegisterTime)
        .sort_order(SortOrder::Descending)
        .send()
        .await
        .unwrap();
    assert_eq!(newest_first.revisions()[0].s3_location.clone().unwrap().key.as_deref(), Some("v2.zip"));
    let deployed =
        cd.list_application_revisions().application_name("shop").deployed(ListStateFilterAction::Include).send().await.unwrap();
    assert_eq!(deployed.revisions().len(), 1);

    let batch = cd
        .batch_get_application_revisions()
        .application_name("shop")
        .revisions(s3_revision("releases", "v2.zip", None))
        .revisions(s3_revision("releases", "v9.zip", None))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.revisions().len(), 1);
    let generic = batch.revisions()[0].generic_revision_info.clone().unwrap();
    assert_eq!(generic.deployment_groups(), ["prod"]);
    assert!(generic.first_used_time.is_some() && generic.last_used_time.is_some());
    assert!(batch.error_message.unwrap().contains("v9.zip"));

    let missing = cd
        .get_application_revision()
        .application_name("shop")
        .revision(s3_revision("releases", "v9.zip", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("RevisionDoesNotExistException"));
    let no_app = cd
        .register_application_revision()
        .application_name("ghost")
        .revision(s3_revision("releases", "v1.zip", None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(no_app.code(), Some("ApplicationDoesNotExistException"));
}
