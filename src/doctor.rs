//! doctor: walks the links a release depends on, in the order a release
//! uses them, and reports each as a ✓/✗ [`Event::Check`] with the fix.
//!
//! Read-only: nothing is uploaded or deployed. A link that fails stops the
//! walk when the later ones depend on it (no role, no bucket check).

use aws_sdk_codedeploy::error::ProvideErrorMetadata as _;

use crate::assume::{self, AssumeOptions};
use crate::aws_error::describe_sdk_error;
use crate::config::Environment;
use crate::event::{Event, Reporter};

struct Checks<'a> {
    reporter: &'a dyn Reporter,
    all_ok: bool,
}

impl Checks<'_> {
    fn ok(&mut self, name: &str, detail: String) {
        self.reporter.report(&Event::Check { name: name.into(), ok: true, detail, fix: None });
    }

    fn fail(&mut self, name: &str, detail: String, fix: String) {
        self.all_ok = false;
        self.reporter.report(&Event::Check { name: name.into(), ok: false, detail, fix: Some(fix) });
    }
}

/// Runs every check for `env`; true when all passed.
pub async fn check(env: &Environment, opts: &AssumeOptions, reporter: &dyn Reporter) -> bool {
    let mut c = Checks { reporter, all_ok: true };
    let select = if env.name.is_empty() { String::new() } else { format!(" --env {}", env.name) };
    let policy_hint = |kind: &str| format!("`ferry policy{select} {kind}` prints the policy it needs");

    let caller = match assume::caller_arn(env).await {
        Ok(arn) => {
            c.ok("source identity", arn.clone());
            arn
        }
        Err(e) => {
            c.fail(
                "source identity",
                e.to_string(),
                "give this agent AWS credentials: an instance role, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                    .into(),
            );
            return false;
        }
    };

    let sdk = match assume::assume(env, opts).await {
        Ok((sdk, session)) => {
            c.ok("assume role", format!("{} as {}", env.role.arn, session.assumed_arn));
            sdk
        }
        Err(e) => {
            c.fail(
                "assume role",
                e.to_string(),
                format!(
                    "check that {} exists, that its trust policy names {} ({}), and that {caller} may call sts:AssumeRole on it ({})",
                    env.role.arn,
                    crate::policy::principal_for_caller(&caller),
                    policy_hint("trust"),
                    policy_hint("jenkins"),
                ),
            );
            return false;
        }
    };

    bucket(&mut c, env, &sdk, &policy_hint("deploy")).await;
    codedeploy(&mut c, env, &sdk, &policy_hint("deploy")).await;
    c.all_ok
}

async fn bucket(c: &mut Checks<'_>, env: &Environment, sdk: &aws_config::SdkConfig, hint: &str) {
    let s3 = crate::upload::s3_client(sdk);
    let prefix = if env.prefix.is_empty() { String::new() } else { format!("{}/", env.prefix) };
    let place = format!("s3://{}/{prefix}", env.bucket);
    // ListObjectsV2 under the prefix is what the deploy policy grants, and
    // ExpectedBucketOwner makes S3 refuse a bucket of another account.
    let listed = s3
        .list_objects_v2()
        .bucket(&env.bucket)
        .prefix(&prefix)
        .max_keys(1)
        .expected_bucket_owner(&env.role.account)
        .send()
        .await;
    match listed {
        Ok(_) => c.ok("bucket", format!("{place} is reachable and owned by account {}", env.role.account)),
        Err(e) => {
            let fix = match e.code() {
                Some("NoSuchBucket") => format!(
                    "create bucket {} in account {} (region {}), or correct {}",
                    env.bucket,
                    env.role.account,
                    env.region,
                    where_set(env, "bucket")
                ),
                Some("AccessDenied") => {
                    format!("the bucket belongs to another account, or the role may not list {place}; {hint}")
                }
                _ => format!("check AWS_ENDPOINT_URL_S3 and the network; {hint}"),
            };
            c.fail("bucket", format!("{place}: {}", describe_sdk_error(&e)), fix);
        }
    }
    if let Some(key) = &env.kms_key_id {
        kms(c, env, &s3, key, hint).await;
    }
}

/// Whether the bucket's default encryption uses the configured key. Whether
/// the role may use the key (kms:GenerateDataKey) shows only on upload.
async fn kms(c: &mut Checks<'_>, env: &Environment, s3: &aws_sdk_s3::Client, key: &str, hint: &str) {
    let got = s3.get_bucket_encryption().bucket(&env.bucket).expected_bucket_owner(&env.role.account).send().await;
    let found: Vec<String> = match &got {
        Ok(out) => out
            .server_side_encryption_configuration()
            .map(|conf| conf.rules())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.apply_server_side_encryption_by_default())
            .filter_map(|d| d.kms_master_key_id().map(str::to_string))
            .collect(),
        Err(e) => {
            c.fail("kms key", describe_sdk_error(e), format!("allow s3:GetEncryptionConfiguration on the bucket; {hint}"));
            return;
        }
    };
    let matches = |f: &String| f == key || f.ends_with(&format!("/{}", key.trim_start_matches("alias/"))) || f.ends_with(key);
    if found.iter().any(matches) {
        c.ok("kms key", format!("bucket {} encrypts new objects with {key}", env.bucket));
    } else {
        c.fail(
            "kms key",
            format!(
                "bucket {} encrypts with {} , not {key}",
                env.bucket,
                if found.is_empty() { "no KMS key".into() } else { found.join(", ") }
            ),
            format!("set the bucket's default encryption to SSE-KMS with {key}, or correct {}", where_set(env, "kms_key_id")),
        );
    }
}

async fn codedeploy(c: &mut Checks<'_>, env: &Environment, sdk: &aws_config::SdkConfig, hint: &str) {
    let cd = aws_sdk_codedeploy::Client::new(sdk);
    let place = format!("account {} region {}", env.role.account, env.region);
    match cd.get_application().application_name(&env.application).send().await {
        Ok(_) => c.ok("application", format!("{} exists", env.application)),
        Err(e) => {
            let fix = match e.code() {
                Some("ApplicationDoesNotExistException") => {
                    format!("create CodeDeploy application {} in {place}, or correct `application`", env.application)
                }
                _ => hint.to_string(),
            };
            c.fail("application", describe_sdk_error(&e), fix);
            return;
        }
    }
    let group_config = match cd
        .get_deployment_group()
        .application_name(&env.application)
        .deployment_group_name(&env.deployment_group)
        .send()
        .await
    {
        Ok(out) => {
            c.ok("deployment group", format!("{} exists in {}", env.deployment_group, env.application));
            out.deployment_group_info().and_then(|g| g.deployment_config_name()).map(str::to_string)
        }
        Err(e) => {
            let fix = match e.code() {
                Some("DeploymentGroupDoesNotExistException") => format!(
                    "create deployment group {} in application {}, or correct `deployment_group`",
                    env.deployment_group, env.application
                ),
                _ => hint.to_string(),
            };
            c.fail("deployment group", describe_sdk_error(&e), fix);
            None
        }
    };
    let Some(config) = env.deployment_config.clone().or(group_config) else {
        return;
    };
    match cd.get_deployment_config().deployment_config_name(&config).send().await {
        Ok(_) => c.ok("deployment config", format!("{config} exists")),
        Err(e) => c.fail(
            "deployment config",
            describe_sdk_error(&e),
            format!("create deployment configuration {config} in {place}, or correct `deployment_config`"),
        ),
    }
}

/// Where a setting came from, for a fix: the environment's table, or the
/// flag when no environment was selected.
fn where_set(env: &Environment, key: &str) -> String {
    if env.name.is_empty() { format!("--{}", key.replace('_', "-")) } else { format!("`{key}` in [env.{}]", env.name) }
}
