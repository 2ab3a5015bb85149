//! MFA for a human's release (issue 26, item 3): the device from
//! `FERRY_MFA_SERIAL` or the profile's `mfa_serial`, the code from
//! `--mfa-code` (or a prompt on a terminal, never without one), sent on
//! ferry's first AssumeRole, and the session cached 0600 for its lifetime.
//!
//! moto ignores SerialNumber and TokenCode (real STS checks the code
//! against the user's device, and the trust policy's
//! `aws:MultiFactorAuthPresent`), so what ferry sends is read off the wire
//! through a relay in front of STS.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, Stack, StackOptions, TeeProxy, Tripwire, app_tree, run};

const SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";

/// HOME with `[profile alice]`: the stack's ops keys in the credentials
/// file, the MFA device in the config file.
fn laptop_home(stack: &Stack) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/config"), format!("[profile alice]\nmfa_serial = {SERIAL}\n")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[alice]\naws_access_key_id = {}\naws_secret_access_key = {}\n", stack.ops_access_key(), stack.ops_secret_key()),
    )
    .unwrap();
    home
}

/// ferry with profile `alice` and no key in the environment, STS behind `sts`.
fn laptop(stack: &Stack, home: &Path, sts: &TeeProxy) -> std::process::Command {
    let mut cmd = common::laptop_command(stack, home);
    cmd.env("AWS_ENDPOINT_URL_STS", sts.endpoint()).args(["--profile", "alice"]);
    cmd
}

/// `ferry [--mfa-code CODE] ARGS --config …` from the laptop.
fn ferry(stack: &Stack, home: &Path, sts: &TeeProxy, code: Option<&str>, args: &[&str]) -> Run {
    let config = home.join("ferry.toml");
    if !config.exists() {
        stack.write_config(home, "production");
    }
    let mut cmd = laptop(stack, home, sts);
    if let Some(code) = code {
        cmd.args(["--mfa-code", code]);
    }
    run(cmd.args(args).arg("--config").arg(&config))
}

/// A release of a new revision (each one differs from the last).
fn release(stack: &Stack, home: &Path, sts: &TeeProxy, code: Option<&str>) -> Run {
    let app = app_tree(home, &format!("exit 0 # revision {}", common::deployment_ids(stack).len() + 1));
    let app = app.to_str().unwrap();
    ferry(stack, home, sts, code, &["release", app, "--env", "production", "--wait", "--timeout", "2m"])
}

/// The AssumeRole requests the relay saw, one string each.
fn assume_role_calls(sts: &TeeProxy) -> Vec<String> {
    sts.requests().split("POST ").filter(|r| r.contains("Action=AssumeRole&")).map(String::from).collect()
}

/// The session cache directory under `home` and the files in it.
fn cache_files(home: &Path) -> (PathBuf, Vec<PathBuf>) {
    let dir = home.join(".cache/ferry/sessions");
    let files = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    (dir, files)
}

/// A stack, a laptop HOME and the STS relay, after one release made with
/// `--mfa-code 123456`.
fn released_with_a_code() -> (Stack, tempfile::TempDir, TeeProxy) {
    let stack = Stack::start_with(StackOptions::default());
    let home = laptop_home(&stack);
    let sts = TeeProxy::start(stack.moto_endpoint());
    let out = release(&stack, home.path(), &sts, Some("123456"));
    assert_eq!(out.code, 0, "{}", out.all());
    (stack, home, sts)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_mfa_code_reaches_sts_once_and_the_next_release_and_its_rollback_use_the_cached_session() {
    let stack = Stack::start_with(StackOptions::default());
    let home = laptop_home(&stack);
    let sts = TeeProxy::start(stack.moto_endpoint());

    let first = release(&stack, home.path(), &sts, Some("123456"));
    assert_eq!(first.code, 0, "{}", first.all());
    let calls = assume_role_calls(&sts);
    assert_eq!(calls.len(), 1, "{}", sts.requests());
    assert!(calls[0].contains(&format!("SerialNumber={SERIAL}")), "{}", calls[0]);
    assert!(calls[0].contains("TokenCode=123456"), "{}", calls[0]);
    assert!(calls[0].contains(&format!("RoleArn={}", stack.role_arn())), "{}", calls[0]);

    // No code, no terminal: the cached session is the only way this works.
    let second = release(&stack, home.path(), &sts, None);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_eq!(assume_role_calls(&sts).len(), 1, "no second AssumeRole:\n{}", sts.requests());
    assert_eq!(common::deployment_ids(&stack).len(), 2);
    assert!(second.stderr.contains("assumed-role/CA_ServiceDeployer/ferry-alice"), "{}", second.stderr);

    // And its rollback: still no code, still no AssumeRole.
    let back = ferry(&stack, home.path(), &sts, None, &["rollback", "--env", "production", "--timeout", "2m"]);
    assert_eq!(back.code, 0, "{}", back.all());
    assert_eq!(assume_role_calls(&sts).len(), 1, "{}", sts.requests());
    assert_eq!(common::deployment_ids(&stack).len(), 3, "the rollback is a deployment too");
    for out in [&first, &second, &back] {
        common::assert_no_secrets(&stack, out);
    }
}

#[cfg(unix)]
#[test]
fn the_session_cache_is_a_0600_file_in_a_0700_dir_holding_no_long_term_key() {
    let (stack, home, _) = released_with_a_code();

    let (dir, files) = cache_files(home.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&files[0]), 0o600);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(stack.ops_secret_key()), "the long-term secret key is never cached");
    assert!(!text.contains(stack.ops_access_key()), "nor its key id");
    let cached: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = cached.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_key_id", "expiration", "secret_access_key", "session_token"]);
    let session_key = cached["access_key_id"].as_str().unwrap();
    assert!(
        common::moto_sessions(&stack).iter().any(|s| s.access_key_id == session_key),
        "the cached key is the assumed session's"
    );
}

#[test]
fn expired_sessions_are_deleted_when_a_new_one_is_cached() {
    let (stack, home, sts) = released_with_a_code();
    let (dir, files) = cache_files(home.path());
    // An expired session of another role (another name), and a file that is not ferry's.
    let old = dir.join(format!("{}.json", "0".repeat(64)));
    let mut expired: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    expired["expiration"] = serde_json::json!(1);
    std::fs::write(&old, expired.to_string()).unwrap();
    std::fs::write(dir.join("notes.json"), "{}").unwrap();
    std::fs::remove_file(&files[0]).unwrap();

    let out = release(&stack, home.path(), &sts, Some("654321"));
    assert_eq!(out.code, 0, "{}", out.all());
    let (_, now) = cache_files(home.path());
    assert!(!old.exists(), "the expired session is gone: {now:?}");
    assert!(dir.join("notes.json").exists(), "only ferry's own files are touched");
    assert_eq!(now.len(), 2, "the new session and the foreign file: {now:?}");
}

#[test]
fn a_cached_session_near_its_end_is_not_used() {
    let (stack, home, sts) = released_with_a_code();

    // Ten minutes left: less than a deployment may need.
    let (_, files) = cache_files(home.path());
    let mut cached: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    cached["expiration"] = serde_json::json!(now + 600);
    std::fs::write(&files[0], cached.to_string()).unwrap();

    let again = release(&stack, home.path(), &sts, None);
    assert_eq!(again.code, 1, "a new code is needed: {}", again.all());
    assert!(again.stderr.contains("--mfa-code"), "{}", again.stderr);
    assert_eq!(assume_role_calls(&sts).len(), 1);
    assert_eq!(common::deployment_ids(&stack).len(), 1);
}

/// An offline directory: the `[env.production]` of the tests that never
/// reach AWS, and ~/.aws/config with `profile`'s text.
fn offline(profile: &str) -> (Tripwire, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), common::OFFLINE_CONFIG).unwrap();
    std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
    std::fs::write(dir.path().join(".aws/config"), profile).unwrap();
    (Tripwire::new(), dir)
}

#[test]
fn without_a_terminal_or_a_code_ferry_says_how_to_pass_one_and_calls_nothing() {
    let (wire, dir) = offline("");
    let out = run(wire.command(dir.path()).env("FERRY_MFA_SERIAL", SERIAL).stdin(std::process::Stdio::null()).args([
        "env",
        "--env",
        "production",
    ]));
    assert_eq!(out.code, 1, "{}", out.all());
    for needle in [SERIAL, "(from FERRY_MFA_SERIAL)", "no terminal", "--mfa-code", "unset FERRY_MFA_SERIAL"] {
        assert!(out.stderr.contains(needle), "{needle} missing: {}", out.stderr);
    }
    assert!(!wire.tripped(), "nothing may reach AWS");
}

/// `ferry --mfa-code CODE env` offline, with FERRY_MFA_SERIAL set.
fn env_with_code(wire: &Tripwire, dir: &Path, code: &str) -> Run {
    run(wire.command(dir).env("FERRY_MFA_SERIAL", SERIAL).args(["--mfa-code", code, "env", "--env", "production"]))
}

#[test]
fn a_code_that_is_not_six_digits_is_refused_before_any_call() {
    let (wire, dir) = offline("");
    let out = env_with_code(&wire, dir.path(), "12345x");
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("MFA code from --mfa-code is not six digits"), "{}", out.stderr);
    assert!(!wire.tripped());
}

#[test]
fn mfa_on_an_sso_profile_is_explained_not_sent() {
    let (wire, dir) = offline(
        "[profile sso]\nsso_session = acme\nsso_account_id = 444444444444\nsso_role_name = Deployer\n\n\
         [sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\n",
    );
    let out = run(wire
        .command(dir.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", dir.path().join(".aws/config"))
        .env("FERRY_MFA_SERIAL", SERIAL)
        .args(["--profile", "sso", "--mfa-code", "123456", "env", "--env", "production"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("IAM Identity Center") && out.stderr.contains("aws sso login"), "{}", out.stderr);
    assert!(out.stderr.contains("Unset FERRY_MFA_SERIAL"), "{}", out.stderr);
    assert!(!wire.tripped());
}

#[test]
fn a_profile_that_assumes_its_own_role_with_mfa_is_pointed_at_role_chain() {
    let (wire, dir) = offline(
        "[profile base]\nregion = us-east-1\n\n[profile admin]\nrole_arn = arn:aws:iam::111111111111:role/Admin\n\
         source_profile = base\nmfa_serial = arn:aws:iam::111111111111:mfa/alice\n",
    );
    let out = run(wire.command(dir.path()).env("AWS_CONFIG_FILE", dir.path().join(".aws/config")).args([
        "--profile",
        "admin",
        "--mfa-code",
        "123456",
        "env",
        "--env",
        "production",
    ]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("role_chain") && out.stderr.contains("arn:aws:iam::111111111111:role/Admin"), "{}", out.stderr);
    assert!(!wire.tripped());
}

#[cfg(unix)]
#[test]
fn a_session_cache_directory_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (wire, dir) = offline("");
    let sessions = dir.path().join(".cache/ferry/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env_with_code(&wire, dir.path(), "123456");
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("writable by group or others (mode 777)"), "{}", out.stderr);
    assert!(out.stderr.contains("could plant an AWS session that ferry would deploy with"), "{}", out.stderr);
    assert!(out.stderr.contains("ferry will not use it"), "{}", out.stderr);
    assert!(!wire.tripped());
}

/// The "Must show" of issue 26, as AWS's model allows it: an SSO profile's
/// role credentials are already MFA-checked at the portal's sign-in (see
/// `mfa_on_an_sso_profile_is_explained_not_sent`), so MFA is shown on a
/// role chain from a profile's keys: the first hop (the hub role) carries
/// the code, the deployer is assumed from its session, and the next command
/// reuses that session without a code.
#[test]
fn a_role_chained_release_sends_the_code_on_the_first_hop_only_and_asks_once() {
    let stack = Stack::start_with(StackOptions::default());
    let home = laptop_home(&stack);
    let config = stack.write_config(home.path(), "production");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}role_chain = [\"{}\"]\n", stack.hub_role_arn())).unwrap();
    let sts = TeeProxy::start(stack.moto_endpoint());

    let first = release(&stack, home.path(), &sts, Some("654321"));
    assert_eq!(first.code, 0, "{}", first.all());
    let calls = assume_role_calls(&sts);
    assert_eq!(calls.len(), 2, "{}", sts.requests());
    assert!(calls[0].contains(&format!("RoleArn={}", stack.hub_role_arn())), "{}", calls[0]);
    assert!(calls[0].contains(&format!("SerialNumber={SERIAL}")) && calls[0].contains("TokenCode=654321"), "{}", calls[0]);
    assert!(calls[1].contains(&format!("RoleArn={}", stack.role_arn())), "{}", calls[1]);
    assert!(!calls[1].contains("SerialNumber") && !calls[1].contains("TokenCode"), "{}", calls[1]);

    let second = release(&stack, home.path(), &sts, None);
    assert_eq!(second.code, 0, "{}", second.all());
    let calls = assume_role_calls(&sts);
    assert_eq!(calls.len(), 3, "only the deployer hop again:\n{}", sts.requests());
    assert!(calls[2].contains(&format!("RoleArn={}", stack.role_arn())) && !calls[2].contains("TokenCode"), "{}", calls[2]);
    assert_eq!(common::deployment_ids(&stack).len(), 2);
}

#[cfg(unix)]
#[test]
fn on_a_terminal_ferry_asks_for_the_code_and_sends_what_was_typed() {
    let stack = Stack::start_with(StackOptions::default());
    let home = laptop_home(&stack);
    let sts = TeeProxy::start(stack.moto_endpoint());
    let config = stack.write_config(home.path(), "production");
    let app = app_tree(home.path(), "exit 0");

    let mut cmd = laptop(&stack, home.path(), &sts);
    cmd.arg("release").arg(&app).args(["--env", "production", "--wait", "--timeout", "2m", "--config"]).arg(&config);
    let prompt = format!("MFA code for {SERIAL} (to assume {}): ", stack.role_arn());
    let (code, shown, _) = common::pty::answering(cmd, &prompt, "246810");
    assert_eq!(code, 0, "{shown}");
    let calls = assume_role_calls(&sts);
    assert!(calls.len() == 1 && calls[0].contains("TokenCode=246810"), "{}", sts.requests());
}

#[test]
fn a_code_sts_refuses_is_named_as_such_and_nothing_is_cached() {
    use faultproxy::{Chance, Fault, FaultProxy, Match, Rule};
    let stack = Stack::start_with(StackOptions::default());
    let home = laptop_home(&stack);
    let sts = TeeProxy::start(stack.moto_endpoint());
    // What real STS answers a wrong code; moto never would.
    let refusing = FaultProxy::start(stack.moto_endpoint(), 7);
    refusing.set_rules(vec![Rule::new(
        Match::Ops(vec!["AssumeRole"]),
        Chance::Always,
        Fault::StsError {
            status: 403,
            code: "AccessDenied",
            message: "MultiFactorAuthentication failed with invalid MFA one time pass code.",
        },
    )]);
    let app = app_tree(home.path(), "exit 0");
    let config = stack.write_config(home.path(), "production");
    let out = run(laptop(&stack, home.path(), &sts)
        .env("AWS_ENDPOINT_URL_STS", refusing.endpoint())
        .args(["--mfa-code", "000000", "release"])
        .arg(&app)
        .args(["--env", "production", "--config"])
        .arg(&config));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains(&format!("STS refused the MFA code for {SERIAL}")), "{}", out.stderr);
    assert!(out.stderr.contains("invalid MFA one time pass code"), "{}", out.stderr);
    assert!(!out.stderr.contains("trust policy"), "not blamed on the trust policy: {}", out.stderr);
    assert_eq!(refusing.stats().fault("AccessDenied"), 1, "one code, one try");
    assert!(cache_files(home.path()).1.is_empty(), "a refused code caches nothing");
    assert!(common::deployment_ids(&stack).is_empty());
}
