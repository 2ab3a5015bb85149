//! `ferry policy`: the generated documents parse as JSON and moto's IAM
//! accepts them in create-role / put-role-policy / put-user-policy.
//!
//! moto validates the documents' grammar (version, effects, actions,
//! resources, condition operators); it does not evaluate the trust policy.

mod common;

use common::{FERRY, Stack, assert_no_secrets, run};

const EXTRA: &str =
    "external_id = \"ops-to-prod\"\nsession_tags = true\nsource_identity = \"build-user\"\nkms_key_id = \"alias/releases\"\n";

fn policy(stack: &Stack, kind: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}{EXTRA}")).unwrap();
    let out = run(stack.ferry_command(FERRY).args(["policy", kind, "--env", "production", "--config"]).arg(&config).args(extra));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_no_secrets(stack, &out);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ferry policy {kind} is not JSON ({e}):\n{}", out.stdout))
}

#[test]
fn generated_policies_are_accepted_by_iam() {
    let stack = Stack::start();
    let trust = policy(
        &stack,
        "trust",
        &["--principal", "arn:aws:iam::111111111111:user/jenkins", "--principal", "arn:aws:iam::111111111111:role/Ops"],
    );
    let deploy = policy(&stack, "deploy", &[]);
    let jenkins = policy(&stack, "jenkins", &[]);

    let principals = &trust["Statement"][0]["Principal"]["AWS"];
    assert_eq!(principals.as_array().map(Vec::len), Some(2), "principals are one array: {trust}");
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], "ops-to-prod");
    assert_eq!(jenkins["Statement"][0]["Resource"], stack.role_arn());

    common::allow_unauthenticated_calls(&stack, 3);
    let iam = stack.iam_as_prod();
    stack.block_on(async {
        let created = iam.create_role().role_name("FerryGenerated").assume_role_policy_document(trust.to_string()).send().await;
        accepted(created, "create-role with the trust policy");
        for (name, doc) in [("ferry-deploy", &deploy), ("ferry-jenkins", &jenkins)] {
            let put =
                iam.put_role_policy().role_name("FerryGenerated").policy_name(name).policy_document(doc.to_string()).send().await;
            accepted(put, &format!("put-role-policy {name}"));
        }
    });
}

fn accepted<T, E: std::error::Error>(result: Result<T, E>, what: &str) {
    if let Err(e) = result {
        panic!("IAM refused {what}: {}", aws_smithy_types::error::display::DisplayErrorContext(e));
    }
}

#[test]
fn trust_without_a_principal_names_the_caller_and_says_so() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let out = run(stack.ferry_command(FERRY).args(["policy", "trust", "--env", "production", "--config"]).arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["Statement"][0]["Principal"]["AWS"], serde_json::json!(["arn:aws:iam::111111111111:user/jenkins"]));
    assert!(out.stderr.contains("--principal"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

/// Every integration test runs ferry under exactly what `ferry policy
/// deploy` generates (tests/stack attaches it): shown here by the deployer
/// session being refused what that document does not grant, by moto for S3
/// and by the emulator for CodeDeploy, while the same calls inside it pass.
#[test]
fn the_stack_holds_the_deployer_to_the_generated_policy() {
    let stack = Stack::start();
    let (s3, cd) = (stack.s3_as_deployer(), stack.codedeploy_as_deployer());
    stack.block_on(async {
        let key = format!("{}/{}/x.zip", ferry_test_stack::PREFIX, stack.application());
        let inside = s3.put_object().bucket(stack.bucket()).key(&key).body(b"x".to_vec().into()).send().await;
        assert!(inside.is_ok(), "a release key is the deployer's to write: {inside:?}");
        let outside = s3.put_object().bucket(stack.bucket()).key("elsewhere/x.zip").body(b"x".to_vec().into()).send().await;
        let code = outside.as_ref().err().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).map(String::from);
        assert_eq!(code.as_deref(), Some("AccessDenied"), "outside the prefix: {outside:?}");
        let policy = s3.get_bucket_policy().bucket(stack.bucket()).send().await;
        assert!(policy.is_err(), "s3:GetBucketPolicy is not granted");

        let group = cd
            .get_deployment_group()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .send()
            .await;
        assert!(group.is_ok(), "the group is the deployer's to read: {group:?}");
        let delete = cd.delete_application().application_name(stack.application()).send().await;
        let code = delete.as_ref().err().and_then(|e| aws_sdk_codedeploy::error::ProvideErrorMetadata::code(e)).map(String::from);
        assert_eq!(code.as_deref(), Some("AccessDeniedException"), "codedeploy:DeleteApplication: {delete:?}");
    });
    // The inspector the tests arrange things with is not held to it.
    let listed = stack.block_on(stack.s3_as_prod().get_bucket_policy().bucket(stack.bucket()).send());
    let code = listed.as_ref().err().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).map(String::from);
    assert_ne!(code.as_deref(), Some("AccessDenied"), "{listed:?}");
}

/// The operations of an AWS service, from botocore's model in the moto venv
/// (the same model the CodeDeploy emulator is checked against), as the Rust
/// SDK names its calls: `ListObjectsV2` → `list_objects_v2`.
fn sdk_operations(service: &str) -> Vec<(String, String)> {
    use std::io::Read;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    let model = std::fs::read_dir(&data)
        .unwrap_or_else(|e| panic!("no moto venv at {} ({e}): run scripts/setup-venv", data.display()))
        .flatten()
        .map(|p| p.path().join("site-packages/botocore/data").join(service))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("botocore has no {service} model under {}", data.display()));
    let version = std::fs::read_dir(&model).unwrap().flatten().map(|e| e.path()).max().unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(version.join("service-2.json.gz")).unwrap())
        .read_to_string(&mut json)
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names = doc["operations"].as_object().unwrap().keys();
    names.map(|op| (op.clone(), snake(op))).collect()
}

fn snake(op: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = op.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit()) {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The IAM actions an S3 operation needs, where they are not `s3:<Operation>`
/// (the Service Authorization Reference's S3 table).
fn s3_actions(op: &str) -> Vec<String> {
    let named: &[&str] = match op {
        "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => &["s3:PutObject"],
        "CopyObject" => &["s3:GetObject", "s3:PutObject"],
        "HeadObject" => &["s3:GetObject"],
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => &["s3:ListBucket"],
        "ListParts" => &["s3:ListMultipartUploadParts"],
        "ListMultipartUploads" => &["s3:ListBucketMultipartUploads"],
        _ => return vec![format!("s3:{op}")],
    };
    named.iter().map(|a| a.to_string()).collect()
}

/// Calls ferry makes that the deploy policy leaves out on purpose, each with
/// why: the call is best effort, and the right it needs is worth more to an
/// attacker than its effect is to ferry.
const NOT_GRANTED_ON_PURPOSE: &[(&str, &str)] = &[(
    "DeleteObject",
    "src/promote.rs removes a refused cross-bucket copy where the role may; a deployer that can delete releases \
     could remove the previous revision a rollback needs",
)];

/// ferry's own source: src/ outside unit tests and `doctor.rs` (which
/// probes each link on purpose, with calls that may be refused).
fn src_text() -> String {
    fn read(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                read(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("doctor.rs") {
                // Unit tests (each file's `#[cfg(test)]` module, at its end)
                // are not calls ferry makes.
                let text = std::fs::read_to_string(&path).unwrap();
                out.push_str(text.split("#[cfg(test)]").next().unwrap_or_default());
            }
        }
    }
    let mut src = String::new();
    read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut src);
    src
}

/// The operations of `service` (botocore's name) that ferry's code calls,
/// found by scanning the source, not from a hand-kept list.
fn called(src: &str, service: &str) -> Vec<String> {
    sdk_operations(service).into_iter().filter(|(_, snake)| src.contains(&format!(".{snake}()"))).map(|(op, _)| op).collect()
}

/// Every `.operation()` of the S3 and CodeDeploy clients that ferry's own
/// code calls, and the IAM actions each needs.
fn calls_in_src() -> Vec<(String, Vec<String>)> {
    let src = src_text();
    let mut calls: Vec<(String, Vec<String>)> = called(&src, "s3").into_iter().map(|op| (op.clone(), s3_actions(&op))).collect();
    calls.extend(called(&src, "codedeploy").into_iter().map(|op| (op.clone(), vec![format!("codedeploy:{op}")])));
    calls
}

/// What `ferry policy deploy` prints offline for `config`, and the actions
/// its statements allow.
fn offline_deploy_policy(config: &str) -> (serde_json::Value, Vec<String>) {
    let wire = common::Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
    let out = run(wire.command(dir.path()).args(["policy", "deploy", "--env", "production"]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!wire.tripped(), "the policy is generated without calling AWS");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut allowed = Vec::new();
    for statement in doc["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        match &statement["Action"] {
            serde_json::Value::String(a) => allowed.push(a.clone()),
            serde_json::Value::Array(a) => allowed.extend(a.iter().filter_map(|v| v.as_str().map(String::from))),
            other => panic!("an Action that is neither a string nor a list: {other}"),
        }
    }
    (doc, allowed)
}

fn covers(allowed: &[String], action: &str) -> bool {
    allowed.iter().any(|a| a == action || a.strip_suffix('*').is_some_and(|prefix| action.starts_with(prefix)))
}

/// Issue 24 item 7: the generated deploy policy allows every S3 and
/// CodeDeploy operation ferry's code calls, CopyObject (promotion) included.
#[test]
fn deploy_policy_allows_every_operation_found_in_the_source() {
    let calls = calls_in_src();
    let ops: Vec<&str> = calls.iter().map(|(op, _)| op.as_str()).collect();
    for expected in ["PutObject", "UploadPart", "CopyObject", "HeadObject", "CreateDeployment", "StopDeployment"] {
        assert!(ops.contains(&expected), "the scan finds {expected} in src/ (found {ops:?})");
    }

    let (doc, allowed) = offline_deploy_policy(&format!("{}{EXTRA}", common::OFFLINE_CONFIG));
    let missing: Vec<String> = calls
        .iter()
        .filter(|(op, _)| !NOT_GRANTED_ON_PURPOSE.iter().any(|(o, _)| o == op))
        .flat_map(|(op, actions)| actions.iter().filter(|a| !covers(&allowed, a)).map(move |a| format!("{op} needs {a}")))
        .collect();
    assert!(missing.is_empty(), "ferry calls these but `ferry policy deploy` does not allow them: {missing:?}\n{doc:#}");
}

/// The same for the platforms' own services: every Lambda operation ferry's
/// code calls is allowed by a Lambda environment's deploy policy, and every
/// ECS, ECR and IAM operation by an ECS environment's.
#[test]
fn platform_policies_allow_every_lambda_ecs_ecr_and_iam_operation_found_in_the_source() {
    let src = src_text();
    let lambda = format!(
        "{}compute_platform = \"Lambda\"\nfunction_name = \"checkout\"\nfunction_alias = \"live\"\n",
        common::OFFLINE_CONFIG
    );
    let ecs = format!("{}compute_platform = \"ECS\"\n", common::OFFLINE_CONFIG);
    let mut missing = Vec::new();
    for (config, services) in [(lambda, &["lambda"][..]), (ecs, &["ecs", "ecr", "iam"][..])] {
        let (doc, allowed) = offline_deploy_policy(&config);
        for service in services {
            let ops = called(&src, service);
            assert!(!ops.is_empty(), "the scan finds no {service} call in src/");
            missing.extend(
                ops.iter()
                    .map(|op| format!("{service}:{op}"))
                    .filter(|action| !covers(&allowed, action))
                    .map(|action| format!("{action} (not in {doc})")),
            );
        }
    }
    assert!(missing.is_empty(), "ferry calls these but its deploy policy does not allow them: {missing:#?}");
}
