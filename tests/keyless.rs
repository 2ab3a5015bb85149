//! Keyless Jenkins: the agent has no AWS key at all, only the OIDC id token
//! Jenkins' OpenID Connect Provider plugin writes to a file, which ferry
//! trades for the deployer's credentials with AssumeRoleWithWebIdentity.
//!
//! moto answers AssumeRoleWithWebIdentity without verifying the token's
//! signature, issuer or audience (real STS checks all three against the
//! role's trust policy and the issuer's keys), so these tests prove what
//! ferry *sends*, read off the wire through a relay: the token file's
//! content, the role, the session name, unsigned; and that a token rotated
//! in the file is the one sent at the next refresh.
//!
//! moto with authentication on refuses any unsigned request, where real STS
//! takes AssumeRoleWithWebIdentity unsigned (the token is the credential).
//! Its only switch lets the next N requests through unchecked: the first
//! test allows exactly one (the web identity call) and checks every later
//! call as usual; the rotation test, whose refreshes come between signed
//! calls, lets the whole release through.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::{FERRY, Run, Stack, StackOptions, TeeProxy, assert_no_secrets, run};

/// A JWT-shaped token with the plugin's claims (unsigned: moto does not check).
fn token(sub: &str, exp: u64) -> String {
    let enc = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = enc(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "test"}));
    let claims = enc(serde_json::json!({
        "iss": "https://jenkins.example.test/oidc",
        "aud": "sts.amazonaws.com",
        "sub": sub,
        "build_number": 57,
        "exp": exp,
        "iat": exp - 3600,
    }));
    format!("{header}.{claims}.c2lnbmF0dXJlLW5vdC1jaGVja2VkLWJ5LW1vdG8")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    std::fs::write(app.join("index.html"), "hi\n").unwrap();
    app
}

/// `ferry release` as a keyless Jenkins agent would run it: no AWS key in
/// the environment, the token file and AWS_ROLE_ARN as `withCredentials`
/// with the plugin's "id token as file" credential sets them.
fn keyless_release(stack: &Stack, dir: &Path, token_file: &Path, sts: &TeeProxy, extra_env: &[(&str, &str)]) -> Run {
    let config = stack.write_config(dir, "production");
    let mut cmd = keyless_command(stack, token_file, sts);
    cmd.args(["release", app(dir).to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(&config);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// ferry with no AWS key, only the token file and AWS_ROLE_ARN.
fn keyless_command(stack: &Stack, token_file: &Path, sts: &TeeProxy) -> std::process::Command {
    let mut cmd = stack.ferry_command(FERRY);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
        .env("AWS_ROLE_ARN", stack.role_arn())
        .env("AWS_ENDPOINT_URL_STS", sts.endpoint())
        .env("BUILD_TAG", "jenkins-web-deploy-57");
    cmd
}

/// The STS requests in the relay's copy, one string each.
fn sts_calls(sts: &TeeProxy, action: &str) -> Vec<String> {
    let all = sts.requests();
    all.split("POST ")
        .filter(|r| r.contains(&format!("Action={action}&")) || r.ends_with(&format!("Action={action}")))
        .map(String::from)
        .collect()
}

#[test]
fn a_keyless_agent_releases_with_one_web_identity_call_and_no_assume_role() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("oidc-token");
    let jwt = token("https://jenkins.example.test/job/web-deploy/", now() + 3600);
    std::fs::write(&token_file, format!("{jwt}\n")).unwrap();
    let sts = TeeProxy::start(stack.moto_endpoint());

    common::allow_unauthenticated_calls(&stack, 1);
    let out = keyless_release(&stack, dir.path(), &token_file, &sts, &[]);
    assert_eq!(out.code, 0, "{}", out.all());

    let calls = sts_calls(&sts, "AssumeRoleWithWebIdentity");
    assert_eq!(calls.len(), 1, "one web identity call:\n{}", sts.requests());
    let call = &calls[0];
    assert!(call.contains(&format!("WebIdentityToken={jwt}")), "the token file's content, trimmed, is sent:\n{call}");
    assert!(call.contains(&format!("RoleArn={}", stack.role_arn())), "{call}");
    assert!(call.contains("RoleSessionName=jenkins-web-deploy-57"), "ferry's session name: {call}");
    assert!(
        !call.to_ascii_lowercase().contains("authorization: aws4-hmac-sha256"),
        "the token is the credential; the call is unsigned:\n{call}"
    );
    assert!(
        sts_calls(&sts, "AssumeRole").is_empty(),
        "the web identity role is the deployer: no second hop:\n{}",
        sts.requests()
    );
    assert!(out.stderr.contains("assumed-role/CA_ServiceDeployer/jenkins-web-deploy-57"), "{}", out.stderr);

    assert!(!out.stdout.contains(&jwt) && !out.stderr.contains(&jwt), "the token never reaches the output");
    assert_no_secrets(&stack, &out);
}

#[test]
fn a_rotated_token_file_is_read_again_at_the_next_refresh() {
    // Short sessions make the SDK refresh mid-deployment; the file is
    // rewritten in between, as the plugin does for each new token.
    let stack = Stack::start_with(StackOptions { instances: 2, step_delay: Duration::from_millis(700), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("oidc-token");
    let first = token("https://jenkins.example.test/job/web-deploy/", now() + 3600);
    let second = token("https://jenkins.example.test/job/web-deploy/#rotated", now() + 7200);
    std::fs::write(&token_file, &first).unwrap();
    let sts = TeeProxy::start(stack.moto_endpoint());

    common::allow_unauthenticated_calls(&stack, 500);
    let out = std::thread::scope(|s| {
        // The plugin rewrites the file once the first token has been sent:
        // seen on the relay, not guessed from the clock.
        s.spawn(|| {
            common::wait_until("the first AssumeRoleWithWebIdentity", || {
                !sts_calls(&sts, "AssumeRoleWithWebIdentity").is_empty()
            });
            std::fs::write(&token_file, &second).unwrap();
        });
        keyless_release(&stack, dir.path(), &token_file, &sts, &[("FERRY_UNSAFE_SESSION_SECONDS", "15")])
    });
    assert_eq!(out.code, 0, "{}", out.all());
    let calls = sts_calls(&sts, "AssumeRoleWithWebIdentity");
    assert!(calls.len() >= 2, "credentials were refreshed at least once:\n{}", sts.requests());
    assert!(calls[0].contains(&format!("WebIdentityToken={first}")), "{}", calls[0]);
    assert!(
        calls.iter().skip(1).any(|c| c.contains(&format!("WebIdentityToken={second}"))),
        "a refresh after the rotation sends the new token:\n{}",
        calls.join("\n----\n")
    );
    for jwt in [&first, &second] {
        assert!(!out.stdout.contains(jwt.as_str()) && !out.stderr.contains(jwt.as_str()));
    }
}

#[test]
fn a_token_file_without_a_role_is_refused_before_any_call() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let token_file = dir.path().join("oidc-token");
    std::fs::write(&token_file, token("x", now() + 60)).unwrap();
    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app(dir.path()).to_str().unwrap(), "--env", "production", "--config"])
        .arg(&config)
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env_remove("AWS_ROLE_ARN"));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("AWS_ROLE_ARN") && out.stderr.contains("web_identity_role_arn"), "{}", out.stderr);
    assert!(common::deployment_ids(&stack).is_empty());
}

/// Issue 24 item 5: the token is a credential. A keyless release with
/// `--debug` (which logs each request), its receipt and JUnit report, and
/// `ferry doctor --debug` are scanned for it, and for every session secret
/// moto issued.
#[test]
fn the_web_identity_token_never_reaches_debug_output_doctor_the_receipt_or_junit() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("oidc-token");
    let jwt = token("https://jenkins.example.test/job/web-deploy/", now() + 3600);
    std::fs::write(&token_file, &jwt).unwrap();
    let sts = TeeProxy::start(stack.moto_endpoint());
    let config = stack.write_config(dir.path(), "production");
    let (receipt, junit) = (dir.path().join("receipt.json"), dir.path().join("junit.xml"));

    common::allow_unauthenticated_calls(&stack, 1);
    let release = run(keyless_command(&stack, &token_file, &sts)
        .args(["--debug", "release", app(dir.path()).to_str().unwrap(), "--env", "production", "--config"])
        .arg(&config)
        .arg("--receipt")
        .arg(&receipt)
        .arg("--junit")
        .arg(&junit));
    assert_eq!(release.code, 0, "{}", release.all());
    common::allow_unauthenticated_calls(&stack, 1);
    let doctor = run(keyless_command(&stack, &token_file, &sts)
        .args(["--debug", "doctor", "--env", "production", "--config"])
        .arg(&config));
    assert_eq!(doctor.code, 0, "{}", doctor.all());
    assert_eq!(sts_calls(&sts, "AssumeRoleWithWebIdentity").len(), 2, "both sent the token:\n{}", sts.requests());

    let written = [&receipt, &junit].map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    let signature = jwt.rsplit('.').next().unwrap();
    for (what, text) in
        [("release", release.all()), ("doctor", doctor.all()), ("receipt", written[0].clone()), ("junit", written[1].clone())]
    {
        assert!(!text.contains(&jwt) && !text.contains(signature), "the web identity token is in the {what}:\n{text}");
        common::assert_text_has_no_secrets(&stack, &text);
    }
}

/// Issue 23 items 7 and 11: a token file that is a FIFO (which hung ferry
/// past `--timeout` and SIGTERM), a directory, missing, empty, not UTF-8 or
/// far too big is named as the file's problem, with exit 1, before any STS
/// call and without waiting on the file.
#[test]
fn a_token_file_that_cannot_hold_a_token_is_named_as_such_and_nothing_reaches_sts() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let sts = TeeProxy::start(stack.moto_endpoint());
    let fifo = dir.path().join("fifo-token");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases = [
        (fifo, "not a regular file"),
        (dir.path().to_path_buf(), "is a directory"),
        (dir.path().join("never-written"), "does not exist"),
        (write("empty-token", b"\n"), "is empty"),
        (write("binary-token", &[0xff, 0xfe, 0x00, 0x41]), "not UTF-8"),
        (write("huge-token", &vec![b'a'; 20 << 20]), "20971520 bytes"),
    ];
    for (path, says) in cases {
        let config = stack.write_config(dir.path(), "production");
        let mut cmd = stack.ferry_command(FERRY);
        cmd.args(["release", app(dir.path()).to_str().unwrap(), "--env", "production", "--timeout", "20s", "--config"])
            .arg(&config)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &path)
            .env("AWS_ROLE_ARN", stack.role_arn())
            .env("AWS_ENDPOINT_URL_STS", sts.endpoint())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // A FIFO used to hang ferry for good: give it far longer than it needs, then fail.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{}: ferry hung on the token file", path.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let out = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(out.code, 1, "{}: {}", path.display(), out.all());
        for phrase in [says, "web identity token file", "Nothing was sent to STS", "id token as file"] {
            assert!(out.stderr.contains(phrase), "{}: missing {phrase:?}: {}", path.display(), out.stderr);
        }
        assert!(!out.stderr.contains("trust policy"), "a file problem, not the trust policy's: {}", out.stderr);
        assert_no_secrets(&stack, &out);
    }
    assert!(sts_calls(&sts, "AssumeRoleWithWebIdentity").is_empty(), "{}", sts.requests());
    assert!(common::deployment_ids(&stack).is_empty());
}
