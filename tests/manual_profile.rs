//! `--profile` / `AWS_PROFILE` and the region fallback for a manual release
//! (issue 26, item 1): checked locally, before any AWS call.

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
