//! What ferry tells STS about a session: tags, SourceIdentity, session
//! policy and duration. moto records only the policy and the duration, so
//! the requests are read off the wire through a relay.

mod common;

use common::{FERRY, Stack, TeeProxy, assert_no_secrets, moto_sessions, run};

fn env_json(stack: &Stack, extra_config: &str, sts: &TeeProxy) -> common::Run {
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}{extra_config}")).unwrap();
    let out = run(stack
        .ferry_command(FERRY)
        .args(["env", "--format", "json", "--env", "production", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL_STS", sts.endpoint())
        .env("BUILD_TAG", "jenkins-web-deploy-42")
        .env("JOB_NAME", "web/deploy")
        .env("BUILD_NUMBER", "42")
        .env("GIT_COMMIT", "0123456789abcdef")
        .env("BUILD_USER_ID", "alice"));
    assert_eq!(out.code, 0, "{}", out.all());
    common::assert_text_has_no_secrets(stack, &out.stderr);
    out
}

#[test]
fn session_tags_and_source_identity_are_sent_when_enabled() {
    let stack = Stack::start();
    let sts = TeeProxy::start(stack.moto_endpoint());
    let out = env_json(&stack, "session_tags = true\nsource_identity = \"build-user\"\n", &sts);
    let sent = sts.requests();
    assert!(sent.contains("Action=AssumeRole"), "{sent}");
    for expected in [
        "RoleSessionName=jenkins-web-deploy-42",
        "SourceIdentity=ferry-alice",
        "Tags.member.1.Key=ferry:job&Tags.member.1.Value=web/deploy",
        "Tags.member.2.Key=ferry:build&Tags.member.2.Value=42",
        "Tags.member.3.Key=ferry:commit&Tags.member.3.Value=0123456789abcdef",
        "Tags.member.4.Key=ferry:user&Tags.member.4.Value=alice",
    ] {
        assert!(sent.contains(expected), "{expected} not sent:\n{sent}");
    }
    assert!(out.stderr.contains("source identity ferry-alice") && out.stderr.contains("ferry:job=web/deploy"), "{}", out.stderr);
}

#[test]
fn no_tags_or_source_identity_unless_configured() {
    let stack = Stack::start();
    let sts = TeeProxy::start(stack.moto_endpoint());
    env_json(&stack, "", &sts);
    let sent = sts.requests();
    assert!(sent.contains("Action=AssumeRole") && sent.contains("DurationSeconds=3600"), "{sent}");
    assert!(!sent.contains("Tags.member") && !sent.contains("SourceIdentity") && !sent.contains("Policy="), "{sent}");
}

#[test]
fn session_policy_is_the_generated_deploy_policy() {
    let stack = Stack::start();
    let sts = TeeProxy::start(stack.moto_endpoint());
    env_json(&stack, "session_policy = true\n", &sts);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let printed = run(stack.ferry_command(FERRY).args(["policy", "deploy", "--env", "production", "--config"]).arg(&config));
    assert_no_secrets(&stack, &printed);
    let printed: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();

    // moto keeps the Policy parameter of each session it issued.
    let session = moto_sessions(&stack).into_iter().find(|s| s.session_name == "jenkins-web-deploy-42").expect("ferry's session");
    let sent: serde_json::Value = serde_json::from_str(session.policy.as_deref().expect("a session policy was sent")).unwrap();
    assert_eq!(sent, printed);
}

#[test]
fn role_chain_assumes_each_hop_with_the_previous_hops_credentials() {
    // The stack has one role, so the chain is jenkins → deployer → deployer.
    // The deployer may not call sts:AssumeRole (least privilege), so the
    // second hop is refused, which shows it was made with the first hop's
    // credentials; and the 1-hour clamp is explained.
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}duration = \"2h\"\nrole_chain = [\"{}\"]\n", stack.role_arn())).unwrap();
    let out = run(stack.ferry_command(FERRY).args(["env", "--format", "json", "--env", "production", "--config"]).arg(&config));

    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("hop 2 of 2"), "the failing hop is named:\n{}", out.stderr);
    assert!(
        out.stderr.contains("assumed-role/CA_ServiceDeployer")
            && out.stderr.contains("not authorized to perform: sts:AssumeRole"),
        "the second hop was signed by the first hop's session:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("limits role-chained sessions to 1 hour") && out.stderr.contains("7200"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

#[test]
fn role_chain_through_a_hub_releases_with_each_hop_signed_by_the_previous_one() {
    // jenkins → HubDeployer (444444444444) → CA_ServiceDeployer (222222222222).
    // moto enforces identity policies: jenkins may assume both roles, the hub
    // may assume only the deployer, and the deployer may assume nothing.
    let stack = Stack::start();
    let sts = TeeProxy::start(stack.moto_endpoint());
    let dir = tempfile::tempdir().unwrap();
    let app = common::app_tree(dir.path(), "exit 0");
    let config = stack.write_config(dir.path(), "production");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}role_chain = [\"{}\"]\n", stack.hub_role_arn())).unwrap();

    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL_STS", sts.endpoint())
        .env("BUILD_TAG", "jenkins-web-deploy-43"));
    assert_eq!(out.code, 0, "a chained release succeeds:\n{}", out.all());
    assert!(out.stderr.contains("assumed-role/CA_ServiceDeployer/jenkins-web-deploy-43"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);

    // Which key signed each AssumeRole, read off the wire: hop 1 with
    // jenkins' own key, hop 2 with the hub session's key (moto's record).
    let hub = moto_sessions(&stack)
        .into_iter()
        .find(|s| s.role_arn == stack.hub_role_arn() && s.session_name == "jenkins-web-deploy-43")
        .expect("moto issued the hub session");
    let sent = sts.requests();
    let signer_of = |role: &str| -> String {
        let at = sent.find(&format!("RoleArn={role}")).unwrap_or_else(|| panic!("no AssumeRole for {role}:\n{sent}"));
        let head = &sent[..at];
        let cred = head.rfind("Credential=").expect("a signed request");
        head[cred + "Credential=".len()..].split('/').next().unwrap().to_string()
    };
    assert_eq!(signer_of(stack.hub_role_arn()), stack.ops_access_key(), "hop 1 is signed by the source identity");
    assert_eq!(signer_of(stack.role_arn()), hub.access_key_id, "hop 2 is signed by hop 1's session");
}
