//! missing: whether the application and deployment group a refused
//! CreateDeployment named exist, before the role's permissions are blamed.
//!
//! CodeDeploy answers `AccessDeniedException` for a group the role's policy
//! does not name, and ferry's policy names only the configured group: a
//! mistyped `--deployment-group` therefore reads as a permission problem.
//! Asks CodeDeploy (ListDeploymentGroups where allowed, else
//! GetDeploymentGroup) and returns the sentence to use instead.

use aws_sdk_codedeploy::error::ProvideErrorMetadata;

use crate::config::Environment;

/// The fix to give for a CreateDeployment refused with `code`, when the
/// group (or application) does not exist or may not; `None` when it exists
/// and the original answer stands.
pub async fn missing_group(cd: &aws_sdk_codedeploy::Client, env: &Environment, code: &str) -> Option<String> {
    if !matches!(code, "AccessDeniedException" | "DeploymentGroupDoesNotExistException") {
        return None;
    }
    let (app, group) = (&env.application, &env.deployment_group);
    let setting = setting(env);
    match cd.list_deployment_groups().application_name(app).send().await {
        Ok(out) => {
            let names = out.deployment_groups();
            if names.iter().any(|n| n == group) {
                return None;
            }
            let have = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Some(format!(
                "Deployment group `{group}` does not exist in application `{app}` (account {} region {}); its groups \
                 are: {have}. Correct {setting}.",
                env.role.account, env.region
            ));
        }
        Err(e) if e.code() == Some("ApplicationDoesNotExistException") => {
            return Some(format!(
                "Application `{app}` does not exist in account {} region {}. Correct `application` (or --application).",
                env.role.account, env.region
            ));
        }
        Err(_) => {}
    }
    match cd.get_deployment_group().application_name(app).deployment_group_name(group).send().await {
        Ok(_) => None,
        Err(e) if e.code() == Some("DeploymentGroupDoesNotExistException") => Some(format!(
            "Deployment group `{group}` does not exist in application `{app}` (the role may not \
             codedeploy:ListDeploymentGroups, so the existing ones cannot be named). Correct {setting}."
        )),
        Err(e) if e.code() == Some("ApplicationDoesNotExistException") => {
            Some(format!("Application `{app}` does not exist. Correct `application` (or --application)."))
        }
        Err(_) if code == "AccessDeniedException" => Some(format!(
            "The role may not act on deployment group `{app}/{group}`: either the group does not exist (CodeDeploy \
             answers AccessDenied for a group the role's policy does not name, whether it exists or not), or the \
             policy lacks it. Check the name first ({setting}); if it is right, give the role \
             codedeploy:CreateDeployment on it (see `ferry policy deploy`)."
        )),
        Err(_) => None,
    }
}

/// Where the group's name came from, for the fix.
fn setting(env: &Environment) -> String {
    if env.name.is_empty() {
        "--deployment-group".into()
    } else {
        format!("--deployment-group, or `deployment_group` in [env.{}]", env.name)
    }
}
