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

/// The fix when something other than AWS answered: not a policy to change.
const NOT_AWS_FIX: &str = "make the proxy let this agent reach AWS (or add AWS to NO_PROXY), or correct \
                           AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS; no policy needs changing";

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

/// Runs every check for `env`; true when all passed. `flags` are the
/// command line's overrides of ferry.toml (` --role-arn …`), kept in the
/// commands suggested as fixes so they print the policy for what was checked.
pub async fn check(env: &Environment, opts: &AssumeOptions, flags: &str, reporter: &dyn Reporter) -> bool {
    let mut c = Checks { reporter, all_ok: true };
    let select = if env.name.is_empty() { flags.to_string() } else { format!(" --env {}{flags}", env.name) };
    let policy_hint = |kind: &str| format!("`ferry policy{select} {kind}` prints the policy it needs");

    if let Some(w) = &env.web_identity
        && !web_identity_token(&mut c, w)
    {
        return false;
    }
    let caller = match &env.web_identity {
        // Keyless: the token is the source identity; there is no key to ask STS about.
        Some(w) => format!("web identity token for {}", w.role.arn),
        None => match assume::caller_arn(env).await {
            Ok(arn) => {
                c.ok("source identity", arn.clone());
                arn
            }
            Err(e) => {
                let fix = match &e {
                    assume::AssumeError::NotAws { .. } => NOT_AWS_FIX.into(),
                    assume::AssumeError::Sso(sso) => sso.fix(),
                    _ => "give this agent AWS credentials: an instance role, AWS_PROFILE, or \
                          AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                        .into(),
                };
                c.fail("source identity", e.to_string(), fix);
                return false;
            }
        },
    };

    let sdk = match assume::assume(env, opts).await {
        Ok((sdk, session)) => {
            c.ok("assume role", format!("{} as {}", env.role.arn, session.assumed_arn));
            sdk
        }
        Err(e) => {
            let fix = match &e {
                assume::AssumeError::NotAws { .. } => NOT_AWS_FIX.into(),
                assume::AssumeError::Sso(sso) => sso.fix(),
                // Nothing reached STS: the message says what to pass or unset.
                assume::AssumeError::Mfa(_) => "pass the code with --mfa-code, or run doctor on a terminal".into(),
                // Keyless: no identity calls AssumeRole; the trust policy admits the token.
                _ if env.web_identity.is_some() => format!(
                    "check that {} exists and that its trust policy allows sts:AssumeRoleWithWebIdentity for this \
                     token's issuer, audience and subject ({})",
                    env.role.arn,
                    policy_hint("trust"),
                ),
                _ => format!(
                    "check that {} exists, that its trust policy names {} ({}), and that {caller} may call sts:AssumeRole on it ({})",
                    env.role.arn,
                    crate::policy::principal_for_caller(&caller),
                    policy_hint("trust"),
                    policy_hint("jenkins"),
                ),
            };
            c.fail("assume role", e.to_string(), fix);
            return false;
        }
    };

    bucket(&mut c, env, &sdk, &policy_hint("deploy")).await;
    codedeploy(&mut c, env, &sdk, &policy_hint("deploy")).await;
    if let Some(function) = env.platform.lambda() {
        lambda_alias(&mut c, function, &sdk, &policy_hint("deploy")).await;
    }
    if let Some(service) = env.platform.ecs() {
        ecs_service(&mut c, env, service, &sdk).await;
    }
    c.all_ok
}

/// A Lambda environment's function and alias: the version a release would
/// move traffic from.
async fn lambda_alias(c: &mut Checks<'_>, function: &crate::config::LambdaFunction, sdk: &aws_config::SdkConfig, hint: &str) {
    let client = aws_sdk_lambda::Client::new(sdk);
    let name = "function alias";
    match crate::lambda::alias_version(&client, function).await {
        Ok(version) => c.ok(name, format!("{}:{} is on version {version}", function.name, function.alias)),
        Err(e @ crate::lambda::LambdaError::Refused { .. })
            if matches!(&e, crate::lambda::LambdaError::Refused { detail, .. } if detail.contains("AccessDenied")) =>
        {
            c.fail(name, e.to_string(), hint.to_string())
        }
        Err(e) => c.fail(
            name,
            e.to_string(),
            format!(
                "create alias {} of function {} pointing at the version that runs now, or correct `function_name` /                  `function_alias`",
                function.alias, function.name
            ),
        ),
    }
}

/// An ECS environment's service: the group (or ferry.toml) names one,
/// it exists, CodeDeploy deploys it (deployment controller CODE_DEPLOY),
/// and the container and port traffic goes to are known.
async fn ecs_service(c: &mut Checks<'_>, env: &Environment, service: &crate::config::EcsService, sdk: &aws_config::SdkConfig) {
    let name = "ECS service";
    let cd = aws_sdk_codedeploy::Client::new(sdk);
    let fix = "see docs/ecs.md for what the service and the group must be (`ferry policy deploy` for the role's rights)";
    let (cluster, svc) = match crate::ecs::group_service(&cd, env, service).await {
        Ok(found) => found,
        Err(e) => return c.fail(name, e.to_string(), fix.into()),
    };
    match crate::ecs::describe_service(&aws_sdk_ecs::Client::new(sdk), &cluster, &svc, service).await {
        Ok(info) => c.ok(
            name,
            format!(
                "{cluster}/{svc} is deployed by CodeDeploy and runs {}; traffic goes to container {} port {}",
                info.task_definition, info.container, info.container_port
            ),
        ),
        Err(e) => c.fail(name, e.to_string(), fix.into()),
    }
}

/// The application's compute platform against the environment's: each
/// environment needs an application of its own platform.
fn platform_matches(env: &Environment, app: Option<&aws_sdk_codedeploy::types::ComputePlatform>) -> Result<String, String> {
    let have = app.map_or("Server", |p| p.as_str());
    let want = env.platform.name();
    if have == want {
        return Ok(format!("{} exists (compute platform {have})", env.application));
    }
    if want != "Server" {
        return Err(format!(
            "{} is a {have} application: a {want} environment needs an application of compute platform {want}",
            env.application
        ));
    }
    let keys = if have == "Lambda" { " with `function_name` and `function_alias`" } else { "" };
    Err(format!(
        "{} is a {have} application: set compute_platform = \"{have}\"{keys} ({have}), or name a Server application",
        env.application
    ))
}

/// The OIDC token file: there, a JWT, not expired, from the configured
/// issuer for the configured audience. Shows the claims that matter for the
/// trust policy (iss, aud, sub), never the token.
fn web_identity_token(c: &mut Checks<'_>, w: &crate::config::WebIdentity) -> bool {
    let name = "web identity token";
    let path = w.token_file.display();
    let claims = match crate::assume::token::read(&w.token_file).map_err(|e| e.to_string()).and_then(|t| token_claims(&t)) {
        Ok(claims) => claims,
        Err(e) => {
            c.fail(
                name,
                format!("{path}: {e}"),
                "bind the OpenID Connect Provider plugin's \"id token as file\" credential to AWS_WEB_IDENTITY_TOKEN_FILE \
                 (withCredentials), or fix `web_identity_token_file`"
                    .into(),
            );
            return false;
        }
    };
    let text = |k: &str| match &claims[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","),
        _ => String::new(),
    };
    let (iss, aud, sub) = (text("iss"), text("aud"), text("sub"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp <= now {
        let ago = now.saturating_sub(exp);
        c.fail(
            name,
            format!("{path} expired {ago} s ago (sub {sub})"),
            "the plugin writes a fresh token each time \
             withCredentials binds it: run ferry inside that block, not after it"
                .into(),
        );
        return false;
    }
    if let Some(want) = w.issuer.as_deref().filter(|want| want.trim_end_matches('/') != iss.trim_end_matches('/')) {
        c.fail(
            name,
            format!("{path} was issued by {iss}, not {want}"),
            "use the credential of the issuer the role trusts, \
             or fix `oidc_issuer`"
                .into(),
        );
        return false;
    }
    if let Some(want) = w.audience.as_deref().filter(|want| !aud.split(',').any(|a| a == *want)) {
        c.fail(
            name,
            format!("{path} is for audience {aud}, not {want}"),
            "set the credential's audience in Jenkins to the \
             one the role's trust policy names (sts.amazonaws.com by convention), or fix `oidc_audience`"
                .into(),
        );
        return false;
    }
    c.ok(name, format!("{path}: issuer {iss}, audience {aud}, subject {sub}, valid {} more s", exp - now));
    true
}

/// The claims of a JWT, decoded but not verified (STS verifies the
/// signature against the issuer's keys).
fn token_claims(token: &str) -> Result<serde_json::Value, String> {
    use base64::Engine;
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [_, payload, _] = parts[..] else { return Err("is not a JWT (three dot-separated parts)".into()) };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "is not a JWT (its claims are not base64url)".to_string())?;
    serde_json::from_slice(&bytes).map_err(|_| "is not a JWT (its claims are not JSON)".into())
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
        Ok(out) => match platform_matches(env, out.application().and_then(|a| a.compute_platform())) {
            Ok(detail) => c.ok("application", detail),
            Err(detail) => {
                c.fail("application", detail, "correct `application` or `compute_platform` in ferry.toml".into());
                return;
            }
        },
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    #[test]
    fn a_lambda_environment_needs_a_lambda_application_and_the_other_way_round() {
        use aws_sdk_codedeploy::types::ComputePlatform;
        let server = Environment::example();
        let function = crate::config::LambdaFunction { name: "f".into(), alias: "live".into(), hooks: Default::default() };
        let lambda = Environment { platform: crate::config::Platform::Lambda(function), ..Environment::example() };
        assert!(platform_matches(&server, None).is_ok() && platform_matches(&server, Some(&ComputePlatform::Server)).is_ok());
        assert!(platform_matches(&lambda, Some(&ComputePlatform::Lambda)).is_ok());
        assert!(platform_matches(&lambda, Some(&ComputePlatform::Server)).unwrap_err().contains("needs an application"));
        assert!(platform_matches(&server, Some(&ComputePlatform::Lambda)).unwrap_err().contains("compute_platform"));
        let ecs = Environment { platform: crate::config::Platform::Ecs(Default::default()), ..Environment::example() };
        assert!(platform_matches(&ecs, Some(&ComputePlatform::Ecs)).is_ok());
        assert!(platform_matches(&ecs, None).unwrap_err().contains("needs an application of compute platform ECS"));
        assert!(platform_matches(&server, Some(&ComputePlatform::Ecs)).unwrap_err().contains("compute_platform = \"ECS\""));
    }

    use base64::Engine;

    use super::*;
    use crate::config::{RoleArn, WebIdentity};

    #[derive(Default)]
    struct Seen(Mutex<Vec<Event>>);
    impl Reporter for Seen {
        fn report(&self, e: &Event) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    fn token(claims: serde_json::Value) -> String {
        let enc = |v: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.sig", enc("{\"alg\":\"RS256\"}".into()), enc(claims.to_string()))
    }

    fn check_token(text: &str, issuer: Option<&str>, audience: Option<&str>) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, text).unwrap();
        let w = WebIdentity {
            token_file: path,
            role: RoleArn::parse("arn:aws:iam::222222222222:role/CA_ServiceDeployer").unwrap(),
            issuer: issuer.map(String::from),
            audience: audience.map(String::from),
        };
        let seen = Seen::default();
        let mut c = Checks { reporter: &seen, all_ok: true };
        let ok = web_identity_token(&mut c, &w);
        let events = seen.0.lock().unwrap();
        let Some(Event::Check { detail, fix, .. }) = events.last() else { panic!("no check reported") };
        (ok, format!("{detail} | {}", fix.clone().unwrap_or_default()))
    }

    fn in_an_hour() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600
    }

    #[test]
    fn a_valid_token_shows_its_claims_but_never_itself() {
        let claims = serde_json::json!({"iss": "https://ci.example.test/oidc", "aud": "sts.amazonaws.com",
            "sub": "https://ci.example.test/job/web/", "exp": in_an_hour()});
        let text = token(claims);
        let (ok, said) = check_token(&text, Some("https://ci.example.test/oidc/"), Some("sts.amazonaws.com"));
        assert!(ok, "{said}");
        assert!(said.contains("subject https://ci.example.test/job/web/"), "{said}");
        assert!(!said.contains(&text) && !said.contains(text.split('.').nth(1).unwrap()), "{said}");
    }

    #[test]
    fn an_expired_token_a_wrong_issuer_and_a_wrong_audience_each_fail_with_a_fix() {
        let base = |exp: u64, iss: &str, aud: &str| token(serde_json::json!({"iss": iss, "aud": aud, "sub": "s", "exp": exp}));
        let (ok, said) = check_token(&base(1_000, "https://ci/oidc", "sts.amazonaws.com"), None, None);
        assert!(!ok && said.contains("expired") && said.contains("withCredentials"), "{said}");
        let (ok, said) =
            check_token(&base(in_an_hour(), "https://other/oidc", "sts.amazonaws.com"), Some("https://ci/oidc"), None);
        assert!(!ok && said.contains("issued by https://other/oidc"), "{said}");
        let (ok, said) = check_token(&base(in_an_hour(), "https://ci/oidc", "vault"), None, Some("sts.amazonaws.com"));
        assert!(!ok && said.contains("audience vault"), "{said}");
        let (ok, said) = check_token("not-a-jwt", None, None);
        assert!(!ok && said.contains("is not a JWT"), "{said}");
    }
}
