//! IAM Identity Center (SSO) profiles as the source of a manual release
//! (issue 26, item 2): aws-config's own SSO provider reads the token
//! `aws sso login` cached under ~/.aws/sso/cache and trades it for role
//! credentials at the portal (here the stack's stand-in, reached through
//! `AWS_ENDPOINT_URL_SSO`); ferry then assumes the deployer role with them.
//!
//! The stand-in hands out a session of the stack's hub role (what a
//! permission set's role would be); moto accepts it and, as always, does
//! not check the deployer role's trust policy.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{Run, Stack, StackOptions, app_tree, assert_no_secrets, run};
use ferry_test_stack::sso::{Grant, SsoPortal, write_token_cache};

const TOKEN: &str = "aoa-test-access-token-from-aws-sso-login";
const START_URL: &str = "https://acme.awsapps.com/start";
const SSO_ACCOUNT: &str = "444444444444";
const SSO_ROLE: &str = "DeployerAccess";

/// A portal that hands out a session of the hub role for [`TOKEN`].
fn portal(stack: &Stack) -> SsoPortal {
    let session = stack.block_on(async {
        stack
            .sts_as_ops()
            .assume_role()
            .role_arn(stack.hub_role_arn())
            .role_session_name("alice@acme.example")
            .send()
            .await
            .expect("the hub role session the portal hands out")
    });
    let c = session.credentials.expect("credentials");
    SsoPortal::start(Grant {
        access_token: TOKEN.into(),
        account_id: SSO_ACCOUNT.into(),
        role_name: SSO_ROLE.into(),
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: Some(c.session_token),
        expiration: SystemTime::now() + Duration::from_secs(3600),
    })
}

/// ~/.aws/config with `[profile sso]` in the `sso_session` form and
/// `[profile legacy]` in the `sso_start_url` form, both for the portal's
/// account and role.
fn aws_config(home: &Path) {
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        format!(
            "[profile sso]\nsso_session = acme\nsso_account_id = {SSO_ACCOUNT}\nsso_role_name = {SSO_ROLE}\n\n\
             [sso-session acme]\nsso_start_url = {START_URL}\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n\n\
             [profile legacy]\nsso_start_url = {START_URL}\nsso_region = us-east-1\nsso_account_id = {SSO_ACCOUNT}\nsso_role_name = {SSO_ROLE}\n"
        ),
    )
    .unwrap();
}

/// ferry as a laptop runs it: no key in the environment, HOME with the
/// profiles and the token cache, the SSO endpoint at the portal.
fn laptop(stack: &Stack, home: &Path, portal: &SsoPortal) -> std::process::Command {
    let mut cmd = common::laptop_command(stack, home);
    cmd.env("AWS_ENDPOINT_URL_SSO", portal.endpoint());
    cmd
}

fn release(stack: &Stack, home: &Path, portal: &SsoPortal, profile: &str) -> Run {
    let config = stack.write_config(home, "production");
    let app = app_tree(home, "exit 0");
    run(laptop(stack, home, portal)
        .args(["--profile", profile, "release"])
        .arg(&app)
        .args(["--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(&config))
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

#[test]
fn an_sso_session_profile_releases_through_the_portal_with_the_cached_token() {
    let stack = Stack::start_with(StackOptions::default());
    let home = tempfile::tempdir().unwrap();
    aws_config(home.path());
    write_token_cache(home.path(), "acme", TOKEN, START_URL, in_an_hour());
    let portal = portal(&stack);

    let out = release(&stack, home.path(), &portal, "sso");
    assert_eq!(out.code, 0, "{}\nportal refused: {:?}", out.all(), portal.refused());
    assert!(portal.served() >= 1, "the credentials came from the portal: {:?}", portal.refused());
    assert!(out.stderr.contains("assumed-role/CA_ServiceDeployer/ferry-alice"), "{}", out.stderr);
    assert_eq!(common::deployment_ids(&stack).len(), 1);
    assert!(!out.all().contains(TOKEN), "the SSO access token never reaches the output");
    assert_no_secrets(&stack, &out);
}

#[test]
fn a_legacy_sso_start_url_profile_releases_too() {
    let stack = Stack::start_with(StackOptions::default());
    let home = tempfile::tempdir().unwrap();
    aws_config(home.path());
    // The legacy form keys the cache by the start URL.
    write_token_cache(home.path(), START_URL, TOKEN, START_URL, in_an_hour());
    let portal = portal(&stack);

    let out = release(&stack, home.path(), &portal, "legacy");
    assert_eq!(out.code, 0, "{}\nportal refused: {:?}", out.all(), portal.refused());
    assert!(portal.served() >= 1);
    assert_eq!(common::deployment_ids(&stack).len(), 1);
}

/// The error when `aws sso login` is due: the profile named, the command
/// to run, exit 2 (credentials), nothing deployed.
fn assert_login_asked(stack: &Stack, out: &Run, profile: &str) {
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains(&format!("AWS profile `{profile}`")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("aws sso login --profile {profile}")), "{}", out.stderr);
    assert!(!out.stderr.contains("trust policy"), "not a trust-policy problem: {}", out.stderr);
    assert!(common::deployment_ids(stack).is_empty());
}

#[test]
fn an_expired_sso_token_asks_for_aws_sso_login_naming_the_profile() {
    let stack = Stack::start_with(StackOptions::default());
    let home = tempfile::tempdir().unwrap();
    aws_config(home.path());
    write_token_cache(home.path(), "acme", TOKEN, START_URL, SystemTime::now() - Duration::from_secs(60));
    let portal = portal(&stack);

    let out = release(&stack, home.path(), &portal, "sso");
    assert_login_asked(&stack, &out, "sso");
    assert_eq!(portal.served(), 0);
}

#[test]
fn a_missing_sso_token_asks_for_aws_sso_login_naming_the_profile() {
    let stack = Stack::start_with(StackOptions::default());
    let home = tempfile::tempdir().unwrap();
    aws_config(home.path());
    let portal = portal(&stack);

    for profile in ["sso", "legacy"] {
        let out = release(&stack, home.path(), &portal, profile);
        assert_login_asked(&stack, &out, profile);
    }
    // doctor, which asks STS who ferry starts as, says the same.
    let config = home.path().join("ferry.toml");
    let out = run(laptop(&stack, home.path(), &portal)
        .args(["--profile", "sso", "doctor", "--env", "production", "--config"])
        .arg(&config));
    assert_login_asked(&stack, &out, "sso");
    assert!(out.stderr.contains("fix: sign in again: `aws sso login --profile sso`"), "{}", out.stderr);
    assert_eq!(portal.served(), 0);
}

#[test]
fn a_token_the_portal_no_longer_honours_asks_for_aws_sso_login_too() {
    // Signed out elsewhere: the cached token looks valid, the portal says 401.
    let stack = Stack::start_with(StackOptions::default());
    let home = tempfile::tempdir().unwrap();
    aws_config(home.path());
    write_token_cache(home.path(), "acme", "aoa-revoked-token", START_URL, in_an_hour());
    let portal = portal(&stack);

    let out = release(&stack, home.path(), &portal, "sso");
    assert_login_asked(&stack, &out, "sso");
    assert!(portal.refused().iter().all(|r| r.starts_with("UnauthorizedException")), "{:?}", portal.refused());
    assert!(!portal.refused().is_empty() && portal.served() == 0);
}

#[test]
fn a_role_the_portal_does_not_grant_is_not_blamed_on_the_sign_in() {
    let stack = Stack::start_with(StackOptions::default());
    let home = tempfile::tempdir().unwrap();
    aws_config(home.path());
    let text = std::fs::read_to_string(home.path().join(".aws/config")).unwrap();
    std::fs::write(home.path().join(".aws/config"), text.replacen(SSO_ROLE, "AdministratorAccess", 1)).unwrap();
    write_token_cache(home.path(), "acme", TOKEN, START_URL, in_an_hour());
    let portal = portal(&stack);

    let out = release(&stack, home.path(), &portal, "sso");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("IAM Identity Center did not hand out credentials for AWS profile `sso`"), "{}", out.stderr);
    assert!(out.stderr.contains("ForbiddenException") && out.stderr.contains("sso_role_name"), "{}", out.stderr);
    assert!(!out.stderr.contains("aws sso login"), "signing in again would not help: {}", out.stderr);
}
