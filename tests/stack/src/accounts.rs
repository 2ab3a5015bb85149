//! The two AWS accounts ferry works across, laid out in moto.
//!
//! Operations (111111111111) holds the Jenkins identity; Production
//! (222222222222) holds the deployer role, the release bucket and the
//! CodeDeploy agent's identity. Setup runs while moto's auth is still off, so
//! it acts inside each account through a throwaway AssumeRole into that
//! account (moto files a session under the account in the role ARN).

use serde_json::{Value, json};

use crate::Result;
use crate::aws::{self, Keys, Target, err};

/// Account id of Operations, where Jenkins lives.
pub const OPERATIONS_ACCOUNT: &str = "111111111111";
/// Account id of Production, where the app is deployed.
pub const PRODUCTION_ACCOUNT: &str = "222222222222";
/// IAM user standing in for the Jenkins role in Operations.
pub const JENKINS_USER: &str = "jenkins";
/// The cross-account role ferry assumes in Production.
pub const DEPLOYER_ROLE: &str = "CA_ServiceDeployer";
/// IAM user standing in for the instance profile of the CodeDeploy agent.
pub const AGENT_USER: &str = "codedeploy-agent";
/// A role in Production the tests inspect and arrange things with, so the
/// deployer role can hold exactly ferry's generated policy.
pub const INSPECTOR_ROLE: &str = "ferry-test-inspector";
/// Account id of a hub account between Operations and Production, for role chains.
pub const HUB_ACCOUNT: &str = "444444444444";
/// The role in the hub account that may assume the deployer role
/// (ops → hub → prod, ferry's `role_chain`).
pub const HUB_ROLE: &str = "HubDeployer";

/// What setup hands out.
pub struct Accounts {
    /// `arn:aws:iam::222222222222:role/CA_ServiceDeployer`.
    pub role_arn: String,
    /// `arn:aws:iam::444444444444:role/HubDeployer`.
    pub hub_role_arn: String,
    /// Access key of the `jenkins` user: ferry's source credentials.
    pub ops: Keys,
    /// A session of the deployer role: what ferry is allowed, no more.
    pub prod: Keys,
    /// A session of [`INSPECTOR_ROLE`]: the bucket and CodeDeploy, whole.
    pub inspector: Keys,
    /// Access key of `codedeploy-agent`: what the emulator fetches bundles with.
    pub agent: Keys,
}

/// Inputs of the layout that tests may vary.
pub struct Layout<'a> {
    /// Release bucket names: the first is the main one, the others belong
    /// to extra environments.
    pub buckets: &'a [&'a str],
    /// `sts:ExternalId` the trust policy demands, if any.
    pub external_id: Option<&'a str>,
    /// The deployer role's identity policy once the bucket exists.
    pub deployer_policy: &'a Value,
}

/// Creates users, role, policies, keys and the bucket. Must run before
/// [`crate::moto::MotoServer::enforce_auth`].
pub async fn lay_out(endpoint: &str, region: &str, layout: &Layout<'_>) -> Result<Accounts> {
    let role_arn = format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{DEPLOYER_ROLE}");
    let hub_role_arn = format!("arn:aws:iam::{HUB_ACCOUNT}:role/{HUB_ROLE}");
    let jenkins_arn = format!("arn:aws:iam::{OPERATIONS_ACCOUNT}:user/{JENKINS_USER}");
    let bootstrap = Keys::unknown();
    let sts = aws::sts(&Target { endpoint, region, keys: &bootstrap });
    let admin_of = async |account: &str| {
        let arn = format!("arn:aws:iam::{account}:role/ferry-test-stack-admin");
        aws::assume_role(&sts, &arn, "setup", None).await
    };

    // Operations: jenkins may do nothing but assume the deployer role (or
    // the hub role, for chained tests).
    let ops_admin = admin_of(OPERATIONS_ACCOUNT).await?;
    let iam = aws::iam(&Target { endpoint, region, keys: &ops_admin });
    let ops = create_user_with_key(&iam, JENKINS_USER, &jenkins_policy(&[&role_arn, &hub_role_arn])).await?;

    // Hub: a role that trusts jenkins and may only assume the deployer role.
    let hub_admin = admin_of(HUB_ACCOUNT).await?;
    let iam = aws::iam(&Target { endpoint, region, keys: &hub_admin });
    iam.create_role()
        .role_name(HUB_ROLE)
        .assume_role_policy_document(trust_policy(&jenkins_arn, None).to_string())
        .send()
        .await
        .map_err(err(format!("iam:CreateRole {HUB_ROLE}")))?;
    iam.put_role_policy()
        .role_name(HUB_ROLE)
        .policy_name("assume-deployer")
        .policy_document(jenkins_policy(&[&role_arn]).to_string())
        .send()
        .await
        .map_err(err(format!("iam:PutRolePolicy {HUB_ROLE}")))?;

    // Production: the role Jenkins assumes, and the agent's read-only user.
    let prod_admin = admin_of(PRODUCTION_ACCOUNT).await?;
    let iam = aws::iam(&Target { endpoint, region, keys: &prod_admin });
    iam.create_role()
        .role_name(DEPLOYER_ROLE)
        .assume_role_policy_document(trust_policy(&jenkins_arn, layout.external_id).to_string())
        .send()
        .await
        .map_err(err(format!("iam:CreateRole {DEPLOYER_ROLE}")))?;
    iam.put_role_policy()
        .role_name(DEPLOYER_ROLE)
        .policy_name("ferry-release")
        .policy_document(setup_policy(layout.buckets).to_string())
        .send()
        .await
        .map_err(err(format!("iam:PutRolePolicy {DEPLOYER_ROLE}")))?;
    let agent = create_user_with_key(&iam, AGENT_USER, &agent_policy(layout.buckets)).await?;
    let inspector_arn = format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{INSPECTOR_ROLE}");
    iam.create_role()
        .role_name(INSPECTOR_ROLE)
        .assume_role_policy_document(trust_policy(&jenkins_arn, None).to_string())
        .send()
        .await
        .map_err(err(format!("iam:CreateRole {INSPECTOR_ROLE}")))?;
    iam.put_role_policy()
        .role_name(INSPECTOR_ROLE)
        .policy_name("inspect")
        .policy_document(setup_policy(layout.buckets).to_string())
        .send()
        .await
        .map_err(err(format!("iam:PutRolePolicy {INSPECTOR_ROLE}")))?;

    // The way ferry will: jenkins' own keys assume the role. The bucket is
    // created by that session so it belongs to the role's account.
    let jenkins_sts = aws::sts(&Target { endpoint, region, keys: &ops });
    let prod = aws::assume_role(&jenkins_sts, &role_arn, "ferry-test-stack", layout.external_id).await?;
    let s3 = aws::s3(&Target { endpoint, region, keys: &prod });
    for bucket in layout.buckets {
        s3.create_bucket().bucket(*bucket).send().await.map_err(err(format!("s3:CreateBucket {bucket}")))?;
    }
    let inspector = aws::assume_role(&jenkins_sts, &inspector_arn, "ferry-test-inspector", None).await?;

    // From now on the deployer may do what ferry's generated policy allows,
    // and nothing else (the same document replaces the setup one).
    iam.put_role_policy()
        .role_name(DEPLOYER_ROLE)
        .policy_name("ferry-release")
        .policy_document(layout.deployer_policy.to_string())
        .send()
        .await
        .map_err(err(format!("iam:PutRolePolicy {DEPLOYER_ROLE} (generated)")))?;

    Ok(Accounts { role_arn, hub_role_arn, ops, prod, inspector, agent })
}

async fn create_user_with_key(iam: &aws_sdk_iam::Client, user: &str, policy: &Value) -> Result<Keys> {
    iam.create_user().user_name(user).send().await.map_err(err(format!("iam:CreateUser {user}")))?;
    iam.put_user_policy()
        .user_name(user)
        .policy_name(format!("{user}-inline"))
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(err(format!("iam:PutUserPolicy {user}")))?;
    let key = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(err(format!("iam:CreateAccessKey {user}")))?
        .access_key
        .ok_or_else(|| format!("iam:CreateAccessKey {user}: no key in the answer"))?;
    Ok(Keys { access_key_id: key.access_key_id, secret_access_key: key.secret_access_key, session_token: None })
}

/// An identity policy allowing one action on the named roles only, as
/// Jenkins' (and the hub's) would be in production.
fn jenkins_policy(role_arns: &[&str]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AssumeDeployer",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": role_arns,
        }]
    })
}

/// Trust policy of the deployer role. The principal is an array because
/// that is how the real account writes it (and ferry's docs quote it).
/// moto does not evaluate cross-account trust; this is for realism and for
/// tests that read the role back.
fn trust_policy(jenkins_arn: &str, external_id: Option<&str>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "AWS": [jenkins_arn] },
        "Action": "sts:AssumeRole",
    });
    if let Some(id) = external_id {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": id } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// Anything on the release buckets and CodeDeploy: the deployer's while the
/// stack is set up (it creates the buckets, so they are Production's), and
/// the inspector's for good.
fn setup_policy(buckets: &[&str]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReleaseBucket",
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": bucket_resources(buckets),
            },
            {
                "Sid": "CodeDeploy",
                "Effect": "Allow",
                "Action": "codedeploy:*",
                "Resource": "*",
            },
            {
                "Sid": "LambdaFunctions",
                "Effect": "Allow",
                "Action": "lambda:*",
                "Resource": "*",
            }
        ]
    })
}

/// The agent's instance profile: read revisions, nothing else. The
/// emulator also moves Lambda aliases with these keys, standing in for
/// CodeDeploy's service role (moto matches a Lambda call's resource as `*`).
fn agent_policy(buckets: &[&str]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadRevisions",
            "Effect": "Allow",
            "Action": ["s3:GetObject*", "s3:ListBucket"],
            "Resource": bucket_resources(buckets),
        }, {
            "Sid": "ShiftLambdaTraffic",
            "Effect": "Allow",
            "Action": ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetFunction"],
            "Resource": "*",
        }]
    })
}

/// Each bucket and its objects, as IAM resources.
fn bucket_resources(buckets: &[&str]) -> Vec<String> {
    buckets.iter().flat_map(|b| [format!("arn:aws:s3:::{b}"), format!("arn:aws:s3:::{b}/*")]).collect()
}
