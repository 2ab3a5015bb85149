//! `ferry release` end to end against moto (STS, IAM, S3) and the CodeDeploy
//! emulator, across two accounts.

mod common;

use common::{FERRY, Stack, StackOptions, Tripwire, app_tree, assert_no_secrets, run};

#[test]
fn operations_identity_alone_is_denied_on_the_production_bucket() {
    let stack = Stack::start();
    let denied = stack.block_on(async {
        stack.s3_as_ops().put_object().bucket(stack.bucket()).key("probe").body(b"x".to_vec().into()).send().await
    });
    let err = denied.expect_err("the Operations identity must not write to the Production bucket");
    let code = err.as_service_error().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).map(String::from);
    assert_eq!(code.as_deref(), Some("AccessDenied"), "{err:?}");
}

#[test]
fn release_with_assumed_role_uploads_and_deployment_succeeds() {
    let stack = Stack::start_with(StackOptions { instances: 2, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "test -f /var/www/hello/index.html || test -n \"$DEPLOYMENT_ID\"");
    let config = stack.write_config(dir.path(), "production");

    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m"])
        .arg("--config")
        .arg(&config)
        .env("BUILD_TAG", "jenkins-web-deploy-42"));

    assert_eq!(out.code, 0, "ferry release failed:\n{}", out.all());
    let deployment_id = out.stdout.trim();
    assert!(deployment_id.starts_with("d-"), "stdout should be the deployment id: {:?}", out.stdout);
    assert!(out.stderr.contains("as session jenkins-web-deploy-42"), "{}", out.stderr);
    assert!(out.stderr.contains("Succeeded"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);

    // The emulator says Succeeded, for exactly the object ferry uploaded into
    // the Production account's bucket.
    let (status, s3_key, etag) = stack.block_on(async {
        let d = stack.codedeploy().get_deployment().deployment_id(deployment_id).send().await.unwrap();
        let info = d.deployment_info().unwrap().clone();
        let loc = info.revision().unwrap().s3_location().unwrap().clone();
        (info.status().unwrap().as_str().to_string(), loc.key().unwrap().to_string(), loc.e_tag().unwrap().to_string())
    });
    assert_eq!(status, "Succeeded");
    assert!(s3_key.starts_with("releases/web/") && s3_key.ends_with(".zip"), "{s3_key}");
    let head = stack.block_on(async {
        stack
            .s3_as_prod()
            .head_object()
            .bucket(stack.bucket())
            .key(&s3_key)
            .expected_bucket_owner(ferry_test_stack::PRODUCTION_ACCOUNT)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(head.e_tag().unwrap().trim_matches('"'), etag);
    assert_eq!(head.metadata().unwrap().get("ferry-build").map(String::as_str), Some("jenkins-web-deploy-42"));
}

#[test]
fn wrong_etag_fails_download_bundle_with_the_emulators_message() {
    // Slow steps: the object is replaced after CreateDeployment and before the
    // instance reaches DownloadBundle, which then sees a different eTag.
    let stack = Stack::start_with(StackOptions { step_delay: std::time::Duration::from_millis(1500), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let config = stack.write_config(dir.path(), "production");

    // --no-wait: created, its id printed, ferry exits without following it.
    let created = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--no-wait"])
        .arg("--config")
        .arg(&config));
    assert_eq!(created.code, 0, "{}", created.all());
    assert!(!created.stderr.contains("DownloadBundle"), "--no-wait does not follow:\n{}", created.stderr);
    let deployment_id = created.stdout.trim().to_string();

    stack.block_on(async {
        let d = stack.codedeploy().get_deployment().deployment_id(&deployment_id).send().await.unwrap();
        let key = d.deployment_info().unwrap().revision().unwrap().s3_location().unwrap().key().unwrap().to_string();
        stack
            .s3_as_prod()
            .put_object()
            .bucket(stack.bucket())
            .key(key)
            .body(b"not the bundle that was deployed".to_vec().into())
            .send()
            .await
            .unwrap();
    });

    let watched = run(stack
        .ferry_command(FERRY)
        .args(["watch", &deployment_id, "--env", "production", "--timeout", "2m"])
        .arg("--config")
        .arg(&config));
    assert_eq!(watched.code, 3, "a failed deployment exits 3:\n{}", watched.all());
    assert!(watched.stderr.contains("failed DownloadBundle"), "{}", watched.stderr);
    assert!(watched.stderr.to_lowercase().contains("etag"), "the emulator's message names the eTag:\n{}", watched.stderr);
    assert_no_secrets(&stack, &watched);
}

fn no_aws_call(args: &[&str], setup: impl FnOnce(&std::path::Path), expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let wire = Tripwire::new();
    let out = run(wire.command(dir.path()).args(args));
    assert_eq!(out.code, 1, "bad input exits 1:\n{}", out.all());
    assert!(out.stderr.contains(expect), "expected {expect:?} in:\n{}", out.stderr);
    assert!(!wire.tripped(), "ferry called AWS although the input was bad");
}

use common::OFFLINE_CONFIG as CONFIG;

#[test]
fn directory_without_appspec_is_refused_before_any_aws_call() {
    no_aws_call(
        &["release", "app", "--env", "production"],
        |d| {
            std::fs::create_dir_all(d.join("app")).unwrap();
            std::fs::write(d.join("app/index.html"), "hi").unwrap();
            std::fs::write(d.join("ferry.toml"), CONFIG).unwrap();
        },
        "has no appspec.yml at its root",
    );
}

#[test]
fn missing_bundle_path_is_refused_before_any_aws_call() {
    no_aws_call(
        &["release", "build/app", "--env", "production"],
        |d| std::fs::write(d.join("ferry.toml"), CONFIG).unwrap(),
        "build/app does not exist",
    );
}

/// Issue 23 item 7: a FIFO at `--config` or at `.ferryignore` hung ferry
/// for good (a blocking open waits for a writer that never comes, and
/// SIGTERM could not reach the abort guard). Both are refused as not
/// regular files, with exit 1 and no AWS call.
#[test]
fn a_fifo_as_config_or_ferryignore_is_refused_without_waiting() {
    let fifo = |p: &std::path::Path| {
        rustix::fs::mknodat(rustix::fs::CWD, p, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o600), 0).unwrap()
    };
    no_aws_call(
        &["release", "app", "--env", "production", "--config", "fifo.toml"],
        |d| {
            app_tree(d, "exit 0");
            fifo(&d.join("fifo.toml"));
        },
        "not a regular file",
    );
    no_aws_call(
        &["release", "app", "--env", "production"],
        |d| {
            app_tree(d, "exit 0");
            std::fs::write(d.join("ferry.toml"), CONFIG).unwrap();
            fifo(&d.join("app/.ferryignore"));
        },
        "not a regular file",
    );
}

#[test]
fn unknown_environment_is_refused_before_any_aws_call() {
    no_aws_call(
        &["release", "app", "--env", "prod"],
        |d| {
            app_tree(d, "exit 0");
            std::fs::write(d.join("ferry.toml"), CONFIG).unwrap();
        },
        "environment `prod` is not defined",
    );
}

#[test]
fn malformed_role_arn_is_refused_before_any_aws_call() {
    no_aws_call(
        &["release", "app", "--env", "production", "--role-arn", "arn:aws:iam::2222:role/CA_ServiceDeployer"],
        |d| {
            app_tree(d, "exit 0");
            std::fs::write(d.join("ferry.toml"), CONFIG).unwrap();
        },
        "is not 12 digits",
    );
}

#[test]
fn unknown_config_key_is_named_before_any_aws_call() {
    no_aws_call(
        &["release", "app", "--env", "production"],
        |d| {
            app_tree(d, "exit 0");
            std::fs::write(d.join("ferry.toml"), CONFIG.replace("bucket =", "buckt =")).unwrap();
        },
        "buckt",
    );
}

#[test]
fn release_survives_credentials_expiring_mid_deployment() {
    // Each session lasts 20 s (an emulator-only length, see
    // FERRY_UNSAFE_SESSION_SECONDS); the deployment takes longer, so the
    // SDK's cache must assume the role again while ferry is watching.
    const SESSION_SECONDS: u64 = 20;
    let stack = Stack::start_with(StackOptions { step_delay: std::time::Duration::from_millis(3000), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let config = stack.write_config(dir.path(), "production");

    let started = std::time::Instant::now();
    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "5m"])
        .arg("--config")
        .arg(&config)
        .env("BUILD_TAG", "refresh-test")
        .env("FERRY_UNSAFE_SESSION_SECONDS", SESSION_SECONDS.to_string()));
    let elapsed = started.elapsed();

    assert_eq!(out.code, 0, "the release must be followed to Succeeded:\n{}", out.all());
    assert!(out.stderr.contains("Succeeded"), "{}", out.stderr);
    assert!(out.stderr.contains("FERRY_UNSAFE_SESSION_SECONDS"), "the short session is announced:\n{}", out.stderr);
    assert!(
        elapsed.as_secs() > SESSION_SECONDS,
        "the run ({elapsed:?}) must outlast one session for this test to mean anything; raise step_delay"
    );
    let assumed = common::moto_sessions(&stack)
        .into_iter()
        .filter(|s| s.session_name == "refresh-test" && s.role_arn == stack.role_arn())
        .count();
    assert!(assumed >= 2, "moto saw {assumed} AssumeRole call(s) by ferry; the credentials were never refreshed");
    assert_no_secrets(&stack, &out);
}

#[test]
fn debug_output_shows_the_sdk_at_work_and_never_a_secret() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let config = stack.write_config(dir.path(), "production");
    let out = run(stack
        .ferry_command(FERRY)
        .args(["--debug", "release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m"])
        .arg("--config")
        .arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    // The SDK's own tracing is there: the operations ferry ran, one by one.
    for op in ["AssumeRole", "PutObject", "CreateDeployment", "GetDeployment"] {
        assert!(out.stderr.contains(op), "--debug does not show {op}:\n{}", out.stderr);
    }
    // …and none of the secret keys or session tokens moto issued.
    assert_no_secrets(&stack, &out);
}

#[test]
fn a_bare_agent_is_told_it_has_no_credentials_and_the_receipt_says_what_was_attempted() {
    // An agent with no credentials anywhere: no keys, no profile files, and
    // an instance metadata service that is not there (a loopback port
    // nothing listens on, as off EC2; never the real 169.254.169.254).
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    app_tree(dir.path(), "exit 0");
    std::fs::write(dir.path().join("ferry.toml"), CONFIG).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = run(wire
        .command(dir.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("http://{closed}"))
        .env("AWS_CONFIG_FILE", dir.path().join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("no-aws-credentials"))
        .env("BUILD_TAG", "jenkins-web-deploy-7")
        .args(["release", "app", "--env", "production"]));

    assert_eq!(out.code, 2, "{}", out.all());
    let said = &out.stderr;
    assert!(
        said.contains("no AWS credentials on this agent to assume arn:aws:iam::222222222222:role/CA_ServiceDeployer"),
        "{said}"
    );
    assert!(!said.contains("could not reach STS") && !said.contains("proxy"), "not a network problem:\n{said}");
    for tried in [
        "1. environment variables: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set",
        "2. shared config and credentials files: profile `default`",
        "no-aws-credentials does not exist",
        "3. web identity token",
        "4. container credentials",
        "5. EC2 instance role (IMDS)",
        "--http-put-response-hop-limit 2",
        "instance profile",
        "withCredentials([aws(credentialsId:",
        "withAWS(credentials:",
    ] {
        assert!(said.contains(tried), "{tried:?} missing from:\n{said}");
    }
    assert!(!wire.tripped(), "STS was never called: there was nothing to sign with");

    // The receipt of that failure says everything ferry.toml and the bundle told.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ferry-receipt.json")).unwrap()).unwrap();
    assert_eq!(r["environment"], "production");
    assert_eq!(r["role_arn"], "arn:aws:iam::222222222222:role/CA_ServiceDeployer");
    assert_eq!(r["bucket"], "ferry-prod-releases");
    assert_eq!(r["application"], "web");
    assert_eq!(r["deployment_group"], "web-prod");
    assert_eq!(r["session_name"], "jenkins-web-deploy-7");
    assert_eq!(r["sha256"].as_str().unwrap().len(), 64, "{r}");
    assert!(r["key"].as_str().unwrap().starts_with("web/"), "{r}");
    assert!(r["error"].as_str().unwrap().contains("no AWS credentials"), "{r}");
}
