//! `ferry doctor` against moto and the CodeDeploy emulator.

mod common;

use common::{FERRY, Stack, assert_no_secrets, run};

fn doctor(stack: &Stack, extra: &[&str]) -> common::Run {
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    run(stack.ferry_command(FERRY).args(["doctor", "--env", "production", "--config"]).arg(&config).args(extra))
}

#[test]
fn doctor_passes_every_link_of_a_working_stack() {
    let stack = Stack::start();
    let out = doctor(&stack, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    for name in ["source identity", "assume role", "bucket", "application", "deployment group", "deployment config"] {
        assert!(out.stderr.contains(&format!("✓ {name}: ")), "no ✓ for {name}:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains('✗'), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

#[test]
fn doctor_marks_a_missing_bucket_with_the_fix() {
    let stack = Stack::start();
    let out = doctor(&stack, &["--bucket", "ferry-no-such-bucket"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("✓ assume role"), "{}", out.stderr);
    let line = out.stderr.lines().find(|l| l.contains("✗ bucket")).unwrap_or_else(|| panic!("no ✗ bucket line:\n{}", out.stderr));
    assert!(line.contains("s3://ferry-no-such-bucket/releases/"), "{line}");
    assert!(out.stderr.contains("fix: "), "{}", out.stderr);
    // The later links do not depend on the bucket and are still checked.
    assert!(out.stderr.contains("✓ deployment group"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

#[test]
fn doctor_marks_a_wrong_role_with_the_trust_and_jenkins_policy_fix() {
    let stack = Stack::start();
    let out = doctor(&stack, &["--role-arn", "arn:aws:iam::222222222222:role/NotTheDeployer"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("✓ source identity: arn:aws:iam::111111111111:user/jenkins"), "{}", out.stderr);
    assert!(out.stderr.contains("✗ assume role"), "{}", out.stderr);
    assert!(out.stderr.contains("not authorized to perform: sts:AssumeRole"), "STS's reason is shown:\n{}", out.stderr);
    assert!(
        out.stderr.contains("NotTheDeployer")
            // The suggested command keeps the flag that overrode ferry.toml.
            && out.stderr.contains(
                "ferry policy --env production --role-arn arn:aws:iam::222222222222:role/NotTheDeployer jenkins"
            ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("✓ bucket"), "nothing past a failed AssumeRole can be checked:\n{}", out.stderr);
    assert_no_secrets(&stack, &out);
}
