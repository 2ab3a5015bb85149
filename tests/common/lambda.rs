//! A Lambda environment on the stack beside others (plan, waves): the
//! application, group and function of `create_lambda`, its `[env.NAME]`,
//! and one deployer policy for it and the stack's other environments.
//! moto runs without auth for Lambda (see tests/lambda.rs).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use ferry_test_stack::application::{LambdaApp, create_lambda};
use ferry_test_stack::{DEPLOYER_ROLE, PREFIX, PRODUCTION_ACCOUNT, REGION, Stack, StackOptions};

/// The Lambda application (computePlatform Lambda).
pub const APPLICATION: &str = "checkout";
/// Its deployment group.
pub const GROUP: &str = "checkout-prod";
/// The function whose alias moves.
pub const FUNCTION: &str = "checkout";
/// Its alias.
pub const ALIAS: &str = "live";
/// A hook function.
pub const PRE_TRAFFIC: &str = "checkout-pre-traffic";
/// The stack's release bucket, shared with its EC2 environment.
pub const BUCKET: &str = "ferry-prod-releases";

/// `[env.NAME]` of the Lambda environment, with `extra` lines (sub-tables last).
pub fn env_toml(name: &str, extra: &str) -> String {
    format!(
        "[env.{name}]\nrole_arn = \"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{DEPLOYER_ROLE}\"\nregion = \"{REGION}\"\n\
         bucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\napplication = \"{APPLICATION}\"\ndeployment_group = \"{GROUP}\"\n\
         compute_platform = \"Lambda\"\nfunction_name = \"{FUNCTION}\"\nfunction_alias = \"{ALIAS}\"\n{extra}"
    )
}

/// What `ferry policy deploy` prints for each of `envs` in the ferry.toml
/// `toml`, as one document. The function-scoped Lambda statement is widened
/// to `*`, as tests/lambda.rs explains (moto knows no Lambda resource types).
pub fn deployer_policy(dir: &Path, toml: &str, envs: &[&str]) -> serde_json::Value {
    let path = dir.join("policy-ferry.toml");
    std::fs::write(&path, toml).unwrap();
    let mut statements = Vec::new();
    for (i, env) in envs.iter().enumerate() {
        let selection = ferry::config::Selection {
            path: Some(path.clone()),
            env: Some(env.to_string()),
            overrides: ferry::config::Overrides::default(),
            unsafe_session_seconds: None,
        };
        let mut policy = ferry::policy::deploy(&ferry::config::resolve(&selection).unwrap());
        for mut s in policy["Statement"].as_array_mut().unwrap().drain(..) {
            if s["Sid"] == "PublishFunction" {
                s["Resource"] = serde_json::json!("*");
            }
            s["Sid"] = serde_json::json!(format!("{}{i}", s["Sid"].as_str().unwrap_or("S")));
            statements.push(s);
        }
    }
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

/// A stack (moto without auth) whose deployer role may do what `envs` of
/// `toml` need, with the Lambda application, group (all at once, rolling
/// back on failure) and function, its alias on version 1.
pub fn start(dir: &Path, toml: &str, envs: &[&str]) -> Stack {
    let stack = Stack::start_with(StackOptions {
        deployer_policy: Some(deployer_policy(dir, toml, envs)),
        moto_auth: false,
        ..Default::default()
    });
    let app = LambdaApp {
        application: APPLICATION,
        group: GROUP,
        config: "CodeDeployDefault.LambdaAllAtOnce",
        auto_rollback: true,
        function: FUNCTION,
        alias: ALIAS,
        hooks: &[(PRE_TRAFFIC, Some("Succeeded"))],
    };
    stack.block_on(create_lambda(&stack.codedeploy(), &stack.lambda(), &app)).unwrap();
    stack
}

/// The version the alias points at.
pub fn alias_version(stack: &Stack) -> String {
    stack.block_on(async {
        let a = stack.lambda().get_alias().function_name(FUNCTION).name(ALIAS).send().await.unwrap();
        a.function_version().unwrap().to_string()
    })
}

/// A directory holding version `n` of the function's code.
pub fn code_dir(dir: &Path, n: usize) -> std::path::PathBuf {
    let code = dir.join(format!("fn-v{n}"));
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("index.py"), format!("def handler(event, context):\n    return {n}\n")).unwrap();
    code
}
