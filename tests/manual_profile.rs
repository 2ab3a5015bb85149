//! `--profile` / `AWS_PROFILE` and the region fallback for a manual release
//! (issue 26, item 1): checked locally, before any AWS call; and a release
//! on the stack whose only credentials are a profile's keys.

mod common;

use std::path::Path;

use common::{OFFLINE_CONFIG, Tripwire, run};

/// `[env.production]` without a region.
fn config_without_region(dir: &Path) {
    let text: String = OFFLINE_CONFIG.lines().filter(|l| !l.starts_with("region")).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("ferry.toml"), text).unwrap();
}

/// ~/.aws/config (HOME is the test's directory) with profiles `dev` and `ops`.
fn aws_config(dir: &Path) {
    std::fs::create_dir_all(dir.join(".aws")).unwrap();
    std::fs::write(dir.join(".aws/config"), "[profile dev]\nregion = eu-central-1\n\n[profile ops]\nregion = us-west-2\n")
        .unwrap();
}

/// A directory with the offline ferry.toml and the two profiles, and a
/// tripwire for every AWS endpoint.
fn offline() -> (Tripwire, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG).unwrap();
    aws_config(dir.path());
    (Tripwire::new(), dir)
}

#[test]
fn a_profile_flag_that_does_not_exist_is_named_with_the_ones_that_do_before_any_call() {
    let (wire, dir) = offline();
    let out = run(wire.command(dir.path()).args(["--profile", "prod", "doctor", "--env", "production"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("AWS profile `prod` (from --profile) does not exist"), "{}", out.stderr);
    assert!(out.stderr.contains("the profiles there are: dev, ops"), "{}", out.stderr);
    assert!(!wire.tripped(), "nothing may reach AWS");
}

#[test]
fn an_aws_profile_variable_that_does_not_exist_is_blamed_on_the_variable() {
    let (wire, dir) = offline();
    let out = run(wire.command(dir.path()).env("AWS_PROFILE", "prod").args(["doctor", "--env", "production"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("(from AWS_PROFILE)") && out.stderr.contains("unset AWS_PROFILE"), "{}", out.stderr);
    assert!(!wire.tripped());
}

#[test]
fn without_a_region_in_ferry_toml_aws_region_then_the_profiles_region_is_used() {
    let (wire, dir) = offline();
    config_without_region(dir.path());
    // AWS_REGION (set by the test command).
    let out = run(wire.command(dir.path()).args(["policy", "--env", "production", "deploy"]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(":us-east-1:"), "{}", out.stdout);
    // No variable: the profile's region.
    let out = run(wire.command(dir.path()).env_remove("AWS_REGION").args([
        "--profile",
        "dev",
        "policy",
        "--env",
        "production",
        "deploy",
    ]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(":eu-central-1:"), "{}", out.stdout);
    // Neither: the missing setting is reported as before.
    let out = run(wire.command(dir.path()).env_remove("AWS_REGION").args(["policy", "--env", "production", "deploy"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("region"), "{}", out.stderr);
    assert!(!wire.tripped());
}

/// A release from a laptop whose only credentials are a profile's keys in
/// the shared credentials file: no AWS_ACCESS_KEY_ID in the environment,
/// `--profile` picks the keys, ferry assumes the Production role with them
/// and deploys.
#[test]
fn a_release_runs_on_a_profiles_own_keys_with_none_in_the_environment() {
    let stack = common::Stack::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/config"), "[profile ops]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = AKIAWRONGDEFAULTKEY1\naws_secret_access_key = not-the-one\n\n\
             [ops]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            stack.ops_access_key(),
            stack.ops_secret_key()
        ),
    )
    .unwrap();
    let config = stack.write_config(home.path(), "production");
    let app = common::app_tree(home.path(), "exit 0");
    let out = run(common::laptop_command(&stack, home.path())
        .args(["--profile", "ops", "release"])
        .arg(&app)
        .args(["--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("assumed-role/CA_ServiceDeployer/ferry-alice"), "{}", out.stderr);
    let ids = common::deployment_ids(&stack);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(out.stdout.contains(&ids[0]) || out.stderr.contains(&ids[0]), "{}", out.all());
    // moto checks signatures and knows no `default` key: the ops profile's
    // key signed the AssumeRole.
    let sessions = common::moto_sessions(&stack);
    assert!(sessions.iter().any(|s| s.role_arn == stack.role_arn() && s.session_name == "ferry-alice"), "{sessions:?}");
    common::assert_no_secrets(&stack, &out);
}
