//! IAM policy documents for an environment, generated from the same
//! settings ferry deploys with: the production role's trust and permissions
//! policies, the Jenkins role's policy, and the session policy that scopes an
//! assumed session down to one environment.
//!
//! Every document is a `serde_json::Value` so it is valid JSON by
//! construction; principals are always arrays (an object with two `"AWS"`
//! keys is not an error in many parsers, it silently keeps the last one).

use serde_json::{Value, json};

use crate::config::Environment;

/// IAM's policy language version.
const VERSION: &str = "2012-10-17";

/// The CodeDeploy actions ferry calls that support no resource type.
const STAR_ONLY_CODEDEPLOY: [&str; 4] = [
    "codedeploy:StopDeployment",
    "codedeploy:ContinueDeployment",
    "codedeploy:ListDeploymentTargets",
    "codedeploy:BatchGetDeploymentTargets",
];

/// Which document `ferry policy` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Trust policy of the production role (who may assume it).
    Trust,
    /// Permissions of the production role: this environment's releases only.
    Deploy,
    /// Identity policy of the Jenkins role: assume exactly the first role.
    Jenkins,
    /// Policy of the instance profile of the deployment group's instances:
    /// what the CodeDeploy agent needs to fetch the bundles ferry uploads.
    Instance,
}

/// The STS actions a caller needs on a role, given the session features
/// the environment turns on.
fn assume_actions(env: &Environment) -> Vec<&'static str> {
    let mut actions = vec!["sts:AssumeRole"];
    actions.extend(session_actions(env));
    actions
}

/// What the session features add to `sts:AssumeRole`: tagging the session
/// (`session_tags`, sent on every hop) and setting its source identity
/// (`source_identity`, set on the first hop and carried down a chain, where
/// every later role's trust must allow it too).
fn session_actions(env: &Environment) -> Vec<&'static str> {
    let mut actions = Vec::new();
    if env.session_tags {
        actions.push("sts:TagSession");
    }
    if env.source_identity.is_some() {
        actions.push("sts:SetSourceIdentity");
    }
    actions
}

/// The trust policy of `env.role`: `principals` may assume it, with the
/// external id condition when one is configured.
///
/// Session tags and source identity get a statement of their own: the
/// Service Authorization Reference lists `sts:ExternalId` for
/// `sts:AssumeRole` only, not for `sts:TagSession` or
/// `sts:SetSourceIdentity`. Without the condition they grant nothing alone:
/// STS checks them only as part of the AssumeRole that still needs the id.
pub fn trust(env: &Environment, principals: &[String]) -> Value {
    let mut assume = json!({
        "Sid": "FerryAssume",
        "Effect": "Allow",
        "Principal": { "AWS": principals },
        "Action": ["sts:AssumeRole"],
    });
    if let Some(id) = &env.external_id {
        assume["Condition"] = json!({ "StringEquals": { "sts:ExternalId": id } });
    }
    let mut statements = vec![assume];
    let session = session_actions(env);
    if !session.is_empty() {
        statements.push(json!({
            "Sid": "FerrySessionTagsAndIdentity",
            "Effect": "Allow",
            "Principal": { "AWS": principals },
            "Action": session,
        }));
    }
    json!({ "Version": VERSION, "Statement": statements })
}

/// The IAM OIDC provider's name for an issuer URL, as condition keys and
/// the provider ARN spell it: `https://jenkins.example.com/oidc` →
/// `jenkins.example.com/oidc`. The issuer must be https, as IAM requires.
pub fn oidc_provider_name(issuer: &str) -> Result<String, String> {
    let Some(rest) = issuer.strip_prefix("https://") else {
        return Err(format!("`{issuer}` is not an https:// URL; IAM only trusts OIDC issuers served over https"));
    };
    let name = rest.trim_end_matches('/');
    if name.is_empty() || name.contains(['?', '#', ' ']) {
        return Err(format!("`{issuer}` is not an issuer URL like https://jenkins.example.com/oidc"));
    }
    Ok(name.to_string())
}

/// The warning `ferry policy trust --oidc-issuer` gives when `subject` pins
/// the role to no job: none given, or a pattern of wildcards only (`*`),
/// which every job's `sub` matches.
pub fn subject_warning(subject: Option<&str>) -> Option<String> {
    let pins_nothing = subject.is_none_or(|s| s.trim().chars().all(|c| matches!(c, '*' | '?')));
    pins_nothing.then(|| {
        let given = subject.map_or("no --subject".to_string(), |s| format!("--subject '{s}' matches every job"));
        format!(
            "{given}: every job of this issuer could assume the role; pin it to the job, e.g. \
             --subject https://jenkins.example.com/job/web-deploy/"
        )
    })
}

/// The trust policy of a role assumed with an OIDC token (Jenkins' OpenID
/// Connect Provider plugin): the issuer's IAM OIDC provider may call
/// `sts:AssumeRoleWithWebIdentity` for tokens whose `aud` is `audience` and
/// whose `sub` (the plugin's default: the job's URL) matches `subject`.
pub fn trust_oidc(env: &Environment, issuer: &str, audience: &str, subject: Option<&str>) -> Result<Value, String> {
    let name = oidc_provider_name(issuer)?;
    let role = env.web_identity.as_ref().map_or(&env.role, |w| &w.role);
    let provider = format!("arn:{}:iam::{}:oidc-provider/{name}", role.partition, role.account);
    let mut condition = json!({ "StringEquals": { format!("{name}:aud"): audience } });
    if let Some(subject) = subject {
        // A pattern with wildcards needs StringLike; an exact job URL is safest as StringEquals.
        let op = if subject.contains(['*', '?']) { "StringLike" } else { "StringEquals" };
        condition[op][format!("{name}:sub")] = json!(subject);
    }
    Ok(json!({
        "Version": VERSION,
        "Statement": [{
            "Sid": "FerryAssumeWithJenkinsOidc",
            "Effect": "Allow",
            "Principal": { "Federated": provider },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        }]
    }))
}

/// Who the trust policy should name when nobody was given: the previous hop
/// of the chain if there is one (only it can assume the last role).
pub fn default_principals(env: &Environment) -> Option<Vec<String>> {
    env.role_chain.last().map(|r| vec![r.arn.clone()])
}

/// The principal ARN to trust for a caller STS reported: an assumed-role
/// session (`arn:aws:sts::1:assumed-role/JenkinsRole/i-0abc`) becomes the
/// role; users and roles stay as they are.
pub fn principal_for_caller(caller_arn: &str) -> String {
    let parts: Vec<&str> = caller_arn.splitn(6, ':').collect();
    if let [_, partition, "sts", _, account, resource] = parts[..]
        && let Some(rest) = resource.strip_prefix("assumed-role/")
    {
        let role = rest.split('/').next().unwrap_or(rest);
        return format!("arn:{partition}:iam::{account}:role/{role}");
    }
    caller_arn.to_string()
}

/// The Jenkins role's policy: `sts:AssumeRole` (plus tagging and source
/// identity when enabled) on exactly the first role ferry assumes.
pub fn jenkins(env: &Environment) -> Value {
    let first = env.role_chain.first().unwrap_or(&env.role);
    json!({
        "Version": VERSION,
        "Statement": [{
            "Sid": "FerryAssumeFirstHop",
            "Effect": "Allow",
            "Action": assume_actions(env),
            "Resource": first.arn,
        }]
    })
}

/// The production role's permissions: releases under the environment's
/// bucket/prefix, deployments of its application to its group, and the KMS
/// key when the bucket encrypts with one.
pub fn deploy(env: &Environment) -> Value {
    let p = &env.role.partition;
    let bucket_arn = format!("arn:{p}:s3:::{}", env.bucket);
    let objects = if env.prefix.is_empty() { format!("{bucket_arn}/*") } else { format!("{bucket_arn}/{}/*", env.prefix) };
    let mut list = json!({
        "Sid": "ListReleases",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": bucket_arn,
    });
    if !env.prefix.is_empty() {
        list["Condition"] = json!({ "StringLike": { "s3:prefix": [env.prefix.clone(), format!("{}/*", env.prefix)] } });
    }
    // Resuming an interrupted upload lists the uploads in progress. The
    // action takes no s3:prefix key (S3 never sets it for this call), so a
    // prefix condition would deny it: it is granted on the bucket alone.
    let uploads = json!({
        "Sid": "ListUploadsInProgress",
        "Effect": "Allow",
        "Action": ["s3:ListBucketMultipartUploads"],
        "Resource": bucket_arn,
    });
    let cd = format!("arn:{p}:codedeploy:{}:{}", env.region, env.role.account);
    let configs = match &env.deployment_config {
        Some(name) => vec![format!("{cd}:deploymentconfig:{name}")],
        // The group's own configuration is not known offline.
        None => vec![format!("{cd}:deploymentconfig:*")],
    };
    let mut statements = vec![
        json!({
            "Sid": "WriteReleases",
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:GetObjectAttributes",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": objects,
        }),
        list,
        uploads,
        json!({
            "Sid": "DeployToGroup",
            "Effect": "Allow",
            "Action": [
                "codedeploy:CreateDeployment",
                "codedeploy:GetDeployment",
                "codedeploy:GetDeploymentGroup",
                // rollback, history and the busy-group queue read the group's past.
                "codedeploy:ListDeployments",
                "codedeploy:BatchGetDeployments",
                "codedeploy:ListDeploymentInstances",
                "codedeploy:BatchGetDeploymentInstances",
            ],
            "Resource": format!("{cd}:deploymentgroup:{}/{}", env.application, env.deployment_group),
        }),
        // These take no resource type (Service Authorization Reference), so
        // AWS grants them only on "*": scoped to the group they were denied,
        // breaking `ferry stop`, every abort, `ferry continue` and the watch's
        // per-instance view. They act on deployment ids, which ferry only
        // knows from its own group.
        json!({
            "Sid": "ControlDeployments",
            "Effect": "Allow",
            "Action": STAR_ONLY_CODEDEPLOY,
            "Resource": "*",
        }),
        // ListDeploymentGroups: a refused CreateDeployment is checked
        // against the groups that exist before permissions are blamed
        // (src/queue/missing.rs). One statement for the application's
        // actions keeps the session policy under STS's 2048 characters.
        json!({
            "Sid": "Application",
            "Effect": "Allow",
            "Action": [
                "codedeploy:GetApplication",
                "codedeploy:RegisterApplicationRevision",
                "codedeploy:GetApplicationRevision",
                "codedeploy:ListDeploymentGroups"
            ],
            "Resource": format!("{cd}:application:{}", env.application),
        }),
        json!({
            "Sid": "ReadDeploymentConfig",
            "Effect": "Allow",
            "Action": ["codedeploy:GetDeploymentConfig"],
            "Resource": configs,
        }),
    ];
    if let Some(function) = env.platform.lambda() {
        statements.push(lambda_statement(env, &function.name));
    }
    if let Some(service) = env.platform.ecs() {
        statements.extend(ecs_statements(env, service));
    }
    if !env.tags.is_empty() {
        // Tags ride on the PUT / CreateMultipartUpload (x-amz-tagging), which
        // S3 authorises as s3:PutObjectTagging as well.
        statements[0]["Action"].as_array_mut().expect("a list of actions").push(json!("s3:PutObjectTagging"));
    }
    if let Some(key) = &env.kms_key_id {
        statements.push(kms_statement(env, key));
        // `ferry doctor` compares the bucket's default key with this one.
        statements.push(json!({
            "Sid": "ReadBucketEncryption",
            "Effect": "Allow",
            "Action": ["s3:GetEncryptionConfiguration"],
            "Resource": format!("arn:{p}:s3:::{}", env.bucket),
        }));
    }
    json!({ "Version": VERSION, "Statement": statements })
}

/// A Lambda release: read the alias, publish the code as a version (from
/// the release bucket, which WriteReleases lets the caller read) and read
/// the version's state. These actions take the reference's `function`
/// type only: the unqualified ARN, which also covers the function's
/// versions and aliases; no other function.
fn lambda_statement(env: &Environment, function: &str) -> Value {
    let arn = format!("arn:{}:lambda:{}:{}:function:{function}", env.role.partition, env.region, env.role.account);
    json!({
        "Sid": "PublishFunction",
        "Effect": "Allow",
        "Action": [
            "lambda:GetAlias",
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:UpdateFunctionCode",
            "lambda:PublishVersion",
        ],
        "Resource": arn,
    })
}

/// An ECS release: read the service and its task definition, pin the
/// image (ECR DescribeImages), check the task's roles and pass them to ECS
/// tasks only, and register the copy. What ferry.toml does not name is
/// granted on the account's: the service (`ecs_cluster`/`ecs_service`
/// unset: read from the group), the task definition family and roles (from
/// the `task_definition` file when set, read here; else the service's),
/// and the repositories (the image is named at release time).
fn ecs_statements(env: &Environment, service: &crate::config::EcsService) -> Vec<Value> {
    let (p, region, account) = (&env.role.partition, &env.region, &env.role.account);
    let file = service.task_definition.as_deref().and_then(|path| crate::ecs::taskdef_file::read(path).ok());
    let family = file.as_ref().and_then(|d| d.family()).map_or("*".to_string(), |f| format!("{f}:*"));
    let mut roles: Vec<String> =
        file.as_ref().map(|d| crate::ecs::roles::of(d).into_iter().map(|(_, arn)| arn).collect()).unwrap_or_default();
    roles.dedup();
    let roles = if roles.is_empty() { json!(format!("arn:{p}:iam::{account}:role/*")) } else { json!(roles) };
    let svc = format!(
        "arn:{p}:ecs:{region}:{account}:service/{}/{}",
        service.cluster.as_deref().unwrap_or("*"),
        service.service.as_deref().unwrap_or("*")
    );
    vec![
        json!({
            "Sid": "RegisterTaskDefinition",
            "Effect": "Allow",
            "Action": ["ecs:RegisterTaskDefinition"],
            "Resource": format!("arn:{p}:ecs:{region}:{account}:task-definition/{family}"),
        }),
        // DescribeTaskDefinition takes no resource type: "*" only.
        json!({ "Sid": "ReadTaskDefinitions", "Effect": "Allow", "Action": ["ecs:DescribeTaskDefinition"], "Resource": "*" }),
        json!({ "Sid": "ReadService", "Effect": "Allow", "Action": ["ecs:DescribeServices"], "Resource": svc }),
        json!({
            "Sid": "PassTaskRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": roles.clone(),
            "Condition": { "StringEquals": { "iam:PassedToService": crate::ecs::roles::TASKS_PRINCIPAL } },
        }),
        json!({ "Sid": "ReadTaskRoles", "Effect": "Allow", "Action": ["iam:GetRole"], "Resource": roles }),
        json!({
            "Sid": "ReadImages",
            "Effect": "Allow",
            "Action": ["ecr:DescribeImages"],
            "Resource": format!("arn:{p}:ecr:*:{account}:repository/*"),
        }),
    ]
}

/// The instance profile's permissions: the CodeDeploy agent on each
/// instance downloads the revision itself, with the instance's role, so it
/// must read this environment's bundles (by version too: ferry pins the
/// deployment to the uploaded version), decrypt them when the bucket uses a
/// KMS key, and read AWS's agent bucket of the region to install and update
/// the agent.
pub fn instance(env: &Environment) -> Value {
    let p = &env.role.partition;
    let bucket_arn = format!("arn:{p}:s3:::{}", env.bucket);
    // Only this application's bundles (`[PREFIX/]APPLICATION/SHA256.zip`):
    // the group's instances have no business with another application's.
    let objects = if env.prefix.is_empty() {
        format!("{bucket_arn}/{}/*", env.application)
    } else {
        format!("{bucket_arn}/{}/{}/*", env.prefix, env.application)
    };
    let mut statements = vec![
        json!({
            "Sid": "ReadReleases",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": objects,
        }),
        json!({
            "Sid": "InstallCodeDeployAgent",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": format!("arn:{p}:s3:::aws-codedeploy-{}/*", env.region),
        }),
    ];
    if let Some(key) = &env.kms_key_id {
        let mut kms = kms_statement(env, key);
        kms["Sid"] = json!("DecryptReleases");
        kms["Action"] = json!(["kms:Decrypt"]);
        statements.push(kms);
    }
    json!({ "Version": VERSION, "Statement": statements })
}

/// Checks that `principal` is something a trust policy's `"AWS"` principal
/// can name: an IAM role, user or account-root ARN, or a 12-digit account
/// id. A bare role name (`JenkinsRole`) is accepted by nothing in IAM.
pub fn check_principal(principal: &str) -> Result<(), String> {
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    let ok = match parts[..] {
        ["arn", partition, "iam", "", account, resource] => {
            !partition.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (resource == "root"
                    || resource.strip_prefix("role/").or_else(|| resource.strip_prefix("user/")).is_some_and(|n| !n.is_empty()))
        }
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let hint = if !principal.contains(':') && !principal.is_empty() {
        format!(" If {principal} is a role, name it arn:aws:iam::ACCOUNT:role/{principal} (with its path, if it has one).")
    } else {
        String::new()
    };
    Err(format!(
        "a trust policy names AWS principals by ARN (arn:aws:iam::111111111111:role/JenkinsRole, …:user/NAME, …:root) or \
         by 12-digit account id; IAM rejects anything else.{hint}"
    ))
}

/// The session policy: the deploy policy, compact. A session gets the
/// intersection of the role's policies and this, so a broad role used by
/// several environments is narrowed to the one being deployed.
pub fn session(env: &Environment) -> String {
    let mut doc = deploy(env);
    // An ECS environment's six statements do not fit STS's 2048 characters
    // beside the rest: the session gets them as one, on "*". The session
    // policy only caps the role; the role's own policy (`ferry policy
    // deploy`) keeps them scoped, PassRole to ecs-tasks only.
    if env.platform.ecs().is_some() {
        let statements = doc["Statement"].as_array_mut().expect("a list of statements");
        statements.retain(|s| !ECS_SIDS.contains(&s["Sid"].as_str().unwrap_or_default()));
        statements.push(json!({
            "Sid": "ReleaseEcs",
            "Effect": "Allow",
            "Action": ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:DescribeServices", "iam:PassRole", "iam:GetRole", "ecr:DescribeImages"],
            "Resource": "*",
        }));
    }
    doc.to_string()
}

/// The Sids of [`ecs_statements`].
const ECS_SIDS: [&str; 6] =
    ["RegisterTaskDefinition", "ReadTaskDefinitions", "ReadService", "PassTaskRoles", "ReadTaskRoles", "ReadImages"];

/// KMS rights for SSE-KMS uploads. An alias cannot be a policy resource for
/// key use, so aliases are matched with the `kms:ResourceAliases` condition.
fn kms_statement(env: &Environment, key: &str) -> Value {
    let p = &env.role.partition;
    let keys = format!("arn:{p}:kms:{}:{}:key", env.region, env.role.account);
    let mut statement = json!({
        "Sid": "EncryptReleases",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"],
    });
    if key.starts_with("arn:") && !key.contains(":alias/") {
        statement["Resource"] = json!(key);
    } else if let Some(alias) = key.rsplit_once(":alias/").map(|(_, a)| a).or_else(|| key.strip_prefix("alias/")) {
        statement["Resource"] = json!(format!("{keys}/*"));
        statement["Condition"] = json!({ "ForAnyValue:StringEquals": { "kms:ResourceAliases": [format!("alias/{alias}")] } });
    } else {
        statement["Resource"] = json!(format!("{keys}/{key}"));
    }
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23 item 11: `--subject '*'` pins nothing, like no `--subject`.
    #[test]
    fn a_subject_of_wildcards_only_warns_like_a_missing_one() {
        for s in [None, Some("*"), Some("**"), Some(" ? "), Some("")] {
            let w = subject_warning(s).unwrap_or_else(|| panic!("{s:?} pins no job"));
            assert!(w.contains("every job of this issuer could assume the role"), "{w}");
        }
        assert!(subject_warning(Some("*")).unwrap().starts_with("--subject '*' matches every job"));
        for pinned in ["https://jenkins.example.com/job/web-deploy/", "https://jenkins.example.com/job/web-*/"] {
            assert_eq!(subject_warning(Some(pinned)), None, "{pinned}");
        }
    }

    #[test]
    fn oidc_trust_names_the_issuers_provider_and_pins_audience_and_subject() {
        let env = env();
        let doc = trust_oidc(
            &env,
            "https://jenkins.example.com/oidc/",
            "sts.amazonaws.com",
            Some("https://jenkins.example.com/job/web/"),
        )
        .unwrap();
        let st = &doc["Statement"][0];
        assert_eq!(st["Principal"]["Federated"], "arn:aws:iam::222222222222:oidc-provider/jenkins.example.com/oidc");
        assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(st["Condition"]["StringEquals"]["jenkins.example.com/oidc:aud"], "sts.amazonaws.com");
        assert_eq!(st["Condition"]["StringEquals"]["jenkins.example.com/oidc:sub"], "https://jenkins.example.com/job/web/");
        let wild = trust_oidc(
            &env,
            "https://jenkins.example.com/oidc",
            "sts.amazonaws.com",
            Some("https://jenkins.example.com/job/web/*"),
        )
        .unwrap();
        assert_eq!(
            wild["Statement"][0]["Condition"]["StringLike"]["jenkins.example.com/oidc:sub"],
            "https://jenkins.example.com/job/web/*"
        );
        assert!(trust_oidc(&env, "http://jenkins/oidc", "a", None).unwrap_err().contains("https"));
    }
    use crate::config::RoleArn;

    fn env() -> Environment {
        Environment {
            role: RoleArn::parse("arn:aws:iam::222222222222:role/CA_ServiceDeployer").unwrap(),
            region: "eu-west-1".into(),
            bucket: "acme-releases".into(),
            ..Environment::example()
        }
    }

    fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
        doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no {sid} in {doc}"))
    }

    #[test]
    fn tagging_is_allowed_only_when_tags_are_configured() {
        let actions = |e: &Environment| deploy(e)["Statement"][0]["Action"].to_string();
        let mut e = env();
        assert!(!actions(&e).contains("s3:PutObjectTagging"));
        e.tags.insert("team".into(), "web".into());
        assert!(actions(&e).contains("s3:PutObjectTagging"));
    }

    #[test]
    fn trust_principals_are_one_array_under_one_aws_key() {
        let principals =
            vec!["arn:aws:iam::111111111111:role/JenkinsRole".to_string(), "arn:aws:iam::111111111111:role/Ops".into()];
        let doc = trust(&env(), &principals);
        let text = serde_json::to_string_pretty(&doc).unwrap();
        assert_eq!(text.matches("\"AWS\"").count(), 1, "{text}");
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], json!(principals));
        assert!(doc["Statement"][0].get("Condition").is_none());
    }

    #[test]
    fn trust_requires_the_external_id_when_configured() {
        let mut e = env();
        e.external_id = Some("ops-to-prod".into());
        let doc = trust(&e, &["arn:aws:iam::111111111111:role/JenkinsRole".into()]);
        assert_eq!(doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], "ops-to-prod");
    }

    #[test]
    fn tagging_and_source_identity_are_allowed_only_when_enabled() {
        let mut e = env();
        assert_eq!(jenkins(&e)["Statement"][0]["Action"], json!(["sts:AssumeRole"]));
        e.session_tags = true;
        e.source_identity = Some("build-user".into());
        let want = json!(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]);
        assert_eq!(jenkins(&e)["Statement"][0]["Action"], want);
        let doc = trust(&e, &[]);
        assert_eq!(doc["Statement"][0]["Action"], json!(["sts:AssumeRole"]));
        assert_eq!(doc["Statement"][1]["Action"], json!(["sts:TagSession", "sts:SetSourceIdentity"]));
        e.session_tags = false;
        assert_eq!(trust(&e, &[])["Statement"][1]["Action"], json!(["sts:SetSourceIdentity"]));
        e.source_identity = None;
        assert_eq!(trust(&e, &[])["Statement"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn jenkins_may_assume_exactly_the_first_hop() {
        let mut e = env();
        assert_eq!(jenkins(&e)["Statement"][0]["Resource"], "arn:aws:iam::222222222222:role/CA_ServiceDeployer");
        e.role_chain = vec![RoleArn::parse("arn:aws:iam::333333333333:role/hub").unwrap()];
        assert_eq!(jenkins(&e)["Statement"][0]["Resource"], "arn:aws:iam::333333333333:role/hub");
        assert_eq!(default_principals(&e), Some(vec!["arn:aws:iam::333333333333:role/hub".to_string()]));
    }

    #[test]
    fn deploy_writes_only_under_the_prefix_and_lists_only_it() {
        let doc = deploy(&env());
        assert_eq!(statement(&doc, "WriteReleases")["Resource"], "arn:aws:s3:::acme-releases/releases/*");
        let list = statement(&doc, "ListReleases");
        assert_eq!(list["Resource"], "arn:aws:s3:::acme-releases");
        assert_eq!(list["Condition"]["StringLike"]["s3:prefix"], json!(["releases", "releases/*"]));
        let text = doc.to_string();
        assert!(!text.contains("\"s3:*\""), "{text}");
    }

    #[test]
    fn only_the_actions_without_a_resource_type_are_granted_on_star() {
        let doc = deploy(&env());
        let star: Vec<&Value> = doc["Statement"].as_array().unwrap().iter().filter(|s| s["Resource"] == "*").collect();
        assert_eq!(star.len(), 1, "{doc}");
        assert_eq!(star[0]["Sid"], "ControlDeployments");
        assert_eq!(star[0]["Action"], json!(STAR_ONLY_CODEDEPLOY));
        assert!(!statement(&doc, "DeployToGroup")["Action"].to_string().contains("StopDeployment"));
    }

    #[test]
    fn listing_uploads_in_progress_carries_no_prefix_condition() {
        let doc = deploy(&env());
        let uploads = statement(&doc, "ListUploadsInProgress");
        assert_eq!(uploads["Action"], json!(["s3:ListBucketMultipartUploads"]));
        assert!(uploads.get("Condition").is_none(), "{uploads}");
        assert!(!statement(&doc, "ListReleases")["Action"].to_string().contains("Multipart"));
    }

    /// Every SDK call ferry's code makes under the assumed role, and the IAM
    /// action it needs. Scanning the sources keeps the generated policy from
    /// falling behind a new feature: real AWS would deny what moto allows.
    const CALLS: &[(&str, &str)] = &[
        (".create_deployment()", "codedeploy:CreateDeployment"),
        (".get_deployment()", "codedeploy:GetDeployment"),
        (".get_deployment_group()", "codedeploy:GetDeploymentGroup"),
        (".stop_deployment()", "codedeploy:StopDeployment"),
        (".continue_deployment()", "codedeploy:ContinueDeployment"),
        (".list_deployments()", "codedeploy:ListDeployments"),
        (".batch_get_deployments()", "codedeploy:BatchGetDeployments"),
        (".list_deployment_targets()", "codedeploy:ListDeploymentTargets"),
        (".batch_get_deployment_targets()", "codedeploy:BatchGetDeploymentTargets"),
        (".get_deployment_target()", "codedeploy:GetDeploymentTarget"),
        (".get_application()", "codedeploy:GetApplication"),
        (".get_deployment_config()", "codedeploy:GetDeploymentConfig"),
        (".register_application_revision()", "codedeploy:RegisterApplicationRevision"),
        (".get_application_revision()", "codedeploy:GetApplicationRevision"),
        (".list_application_revisions()", "codedeploy:ListApplicationRevisions"),
        (".list_deployment_groups()", "codedeploy:ListDeploymentGroups"),
        (".put_object()", "s3:PutObject"),
        (".create_multipart_upload()", "s3:PutObject"),
        (".upload_part()", "s3:PutObject"),
        (".complete_multipart_upload()", "s3:PutObject"),
        (".abort_multipart_upload()", "s3:AbortMultipartUpload"),
        (".list_parts()", "s3:ListMultipartUploadParts"),
        (".list_multipart_uploads()", "s3:ListBucketMultipartUploads"),
        (".head_object()", "s3:GetObject"),
        (".get_object()", "s3:GetObject"),
        (".get_object_attributes()", "s3:GetObjectAttributes"),
        (".list_objects_v2()", "s3:ListBucket"),
        (".get_object_tagging()", "s3:GetObjectTagging"),
        (".put_object_tagging()", "s3:PutObjectTagging"),
    ];

    fn sources(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("doctor.rs") && !path.ends_with("policy.rs")
            {
                // doctor probes links on purpose, and this file names every call.
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }

    #[test]
    fn deploy_policy_allows_every_call_ferry_makes() {
        let mut src = String::new();
        sources(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut src);
        let policy = deploy(&env()).to_string();
        let missing: Vec<&str> = CALLS
            .iter()
            .filter(|(call, _)| src.contains(call))
            .map(|(_, action)| *action)
            .filter(|action| !policy.contains(&format!("\"{action}\"")))
            .collect();
        assert!(missing.is_empty(), "ferry calls these but `ferry policy deploy` does not allow them: {missing:?}");
    }

    #[test]
    fn deploy_names_the_application_group_and_config_arns() {
        let mut e = env();
        e.deployment_config = Some("CodeDeployDefault.OneAtATime".into());
        let doc = deploy(&e);
        assert_eq!(
            statement(&doc, "DeployToGroup")["Resource"],
            "arn:aws:codedeploy:eu-west-1:222222222222:deploymentgroup:web/web-prod"
        );
        assert_eq!(statement(&doc, "Application")["Resource"], "arn:aws:codedeploy:eu-west-1:222222222222:application:web");
        assert_eq!(
            statement(&doc, "ReadDeploymentConfig")["Resource"],
            json!(["arn:aws:codedeploy:eu-west-1:222222222222:deploymentconfig:CodeDeployDefault.OneAtATime"])
        );
    }

    #[test]
    fn principals_must_be_arns_or_account_ids() {
        for ok in [
            "arn:aws:iam::111111111111:role/JenkinsRole",
            "arn:aws:iam::111111111111:role/ci/Jenkins",
            "arn:aws-cn:iam::111111111111:user/jenkins",
            "arn:aws:iam::111111111111:root",
            "111111111111",
        ] {
            assert_eq!(check_principal(ok), Ok(()), "{ok}");
        }
        for bad in [
            "JenkinsRole",
            "",
            "arn:aws:iam::1111:role/J",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:s3:::bucket",
            "arn:aws:sts::111111111111:assumed-role/J/s",
        ] {
            assert!(check_principal(bad).is_err(), "{bad}");
        }
        assert!(check_principal("JenkinsRole").unwrap_err().contains("arn:aws:iam::ACCOUNT:role/JenkinsRole"));
    }

    #[test]
    fn instance_policy_reads_the_releases_and_decrypts_only_with_a_key() {
        let mut e = env();
        let doc = instance(&e).to_string();
        assert!(doc.contains("s3:GetObjectVersion") && doc.contains("aws-codedeploy-"), "{doc}");
        assert!(!doc.contains("kms:") && !doc.contains("s3:PutObject"), "{doc}");
        e.kms_key_id = Some("alias/releases".into());
        let doc = instance(&e).to_string();
        assert!(doc.contains("\"kms:Decrypt\"") && !doc.contains("kms:GenerateDataKey"), "{doc}");
    }

    #[test]
    fn kms_statement_appears_only_with_a_key() {
        let mut e = env();
        assert!(deploy(&e).to_string().find("kms:").is_none());
        e.kms_key_id = Some("1234abcd-12ab-34cd-56ef-1234567890ab".into());
        let doc = deploy(&e);
        assert_eq!(
            statement(&doc, "EncryptReleases")["Resource"],
            "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        e.kms_key_id = Some("alias/releases".into());
        let doc = deploy(&e);
        let s = statement(&doc, "EncryptReleases");
        assert_eq!(s["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"], json!(["alias/releases"]));
    }

    #[test]
    fn session_policy_fits_stss_size_limit() {
        let mut e = env();
        e.kms_key_id = Some("alias/releases".into());
        e.deployment_config = Some("CodeDeployDefault.OneAtATime".into());
        let p = session(&e);
        assert!(p.len() <= 2048, "STS refuses session policies over 2048 characters: {}", p.len());
        // A Lambda environment's statement fits beside the rest, but not
        // beside the KMS statements too (docs/lambda.md says so).
        let function = crate::config::LambdaFunction { name: "checkout".into(), alias: "live".into(), hooks: Default::default() };
        e.platform = crate::config::Platform::Lambda(function);
        e.kms_key_id = None;
        let p = session(&e);
        assert!(p.contains("lambda:UpdateFunctionCode") && p.len() <= 2048, "{}", p.len());
        // So do an ECS environment's statements.
        e.platform = crate::config::Platform::Ecs(Default::default());
        let p = session(&e);
        assert!(p.contains("iam:PassRole") && p.len() <= 2048, "{}", p.len());
        assert!(deploy(&e).to_string().contains("iam:PassedToService"), "the role's own policy keeps PassRole to ECS tasks");
    }

    #[test]
    fn an_ecs_policy_is_scoped_by_what_ferry_toml_and_the_task_definition_file_name() {
        let mut e = env();
        e.platform = crate::config::Platform::Ecs(Default::default());
        let open = deploy(&e);
        assert_eq!(statement(&open, "ReadService")["Resource"], json!("arn:aws:ecs:eu-west-1:222222222222:service/*/*"));
        assert_eq!(statement(&open, "PassTaskRoles")["Resource"], json!("arn:aws:iam::222222222222:role/*"));
        assert_eq!(
            statement(&open, "PassTaskRoles")["Condition"]["StringEquals"]["iam:PassedToService"],
            json!("ecs-tasks.amazonaws.com")
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taskdef.json");
        let roles = ["arn:aws:iam::222222222222:role/web-task", "arn:aws:iam::222222222222:role/web-exec"];
        let def = json!({"family": "web", "taskRoleArn": roles[0], "executionRoleArn": roles[1], "containerDefinitions": [{"name": "web"}]});
        std::fs::write(&file, def.to_string()).unwrap();
        let service = crate::config::EcsService {
            cluster: Some("shop".into()),
            service: Some("web".into()),
            task_definition: Some(file),
            ..Default::default()
        };
        e.platform = crate::config::Platform::Ecs(service);
        let scoped = deploy(&e);
        assert_eq!(statement(&scoped, "ReadService")["Resource"], json!("arn:aws:ecs:eu-west-1:222222222222:service/shop/web"));
        assert_eq!(
            statement(&scoped, "RegisterTaskDefinition")["Resource"],
            json!("arn:aws:ecs:eu-west-1:222222222222:task-definition/web:*")
        );
        assert_eq!(statement(&scoped, "PassTaskRoles")["Resource"], json!(roles));
        assert_eq!(statement(&scoped, "ReadTaskRoles")["Resource"], json!(roles));
    }

    #[test]
    fn caller_sessions_map_to_their_role() {
        assert_eq!(
            principal_for_caller("arn:aws:sts::111111111111:assumed-role/JenkinsRole/i-0abc"),
            "arn:aws:iam::111111111111:role/JenkinsRole"
        );
        assert_eq!(principal_for_caller("arn:aws:iam::111111111111:user/jenkins"), "arn:aws:iam::111111111111:user/jenkins");
    }
}
