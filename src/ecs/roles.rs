//! The task definition's roles, checked before anything is registered:
//! each is in the Production account, exists (`iam:GetRole`) and trusts
//! `ecs-tasks.amazonaws.com` to assume it. Whether ferry's role may pass
//! them (`iam:PassRole`) IAM decides at `RegisterTaskDefinition`; the
//! policy ferry prints grants exactly that (see docs/ecs.md).

use aws_sdk_ecs::types::TaskDefinition;

use super::{EcsError, refused};

/// The service ECS tasks assume their roles as.
pub const TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";

/// The task role and execution role of `definition`, with which is which.
pub fn of(definition: &TaskDefinition) -> Vec<(&'static str, String)> {
    [("task role", definition.task_role_arn()), ("execution role", definition.execution_role_arn())]
        .into_iter()
        .filter_map(|(which, arn)| arn.filter(|a| !a.is_empty()).map(|a| (which, a.to_string())))
        .collect()
}

/// Checks every role of `definition` (see the module's doc).
pub async fn check(iam: &aws_sdk_iam::Client, definition: &TaskDefinition, account: &str) -> Result<(), EcsError> {
    for (which, arn) in of(definition) {
        let role = |problem: String| EcsError::Role { which, arn: arn.clone(), problem };
        let mut parts = arn.splitn(6, ':');
        let (role_account, resource) = (parts.nth(4).unwrap_or_default(), parts.next().unwrap_or_default());
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(role("is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)".into()));
        };
        if role_account != account {
            return Err(role(format!(
                "is in account {role_account}, not {account} where the service runs: a task can only be given a role of its \
                 own account"
            )));
        }
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        let out = iam.get_role().role_name(name).send().await.map_err(|e| {
            use aws_sdk_iam::error::ProvideErrorMetadata;
            if e.code() == Some("NoSuchEntity") {
                return role("does not exist".into());
            }
            refused("IAM", format!("read role {name}"), &e, |_| {
                "Give the role iam:GetRole on the task's roles (see `ferry policy deploy`)".into()
            })
        })?;
        let document = out.role().and_then(|r| r.assume_role_policy_document()).unwrap_or_default();
        if !trusts_ecs_tasks(document) {
            return Err(role(format!(
                "does not trust {TASKS_PRINCIPAL} (its trust policy has no Allow of sts:AssumeRole for that service), so \
                 ECS could not start tasks with it"
            )));
        }
    }
    Ok(())
}

/// Whether a trust policy (URL-encoded, as IAM returns it, or plain)
/// allows `ecs-tasks.amazonaws.com` to assume the role.
pub fn trusts_ecs_tasks(document: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy();
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&decoded) else { return false };
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
            _ => Vec::new(),
        }
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && list(&s["Action"]).iter().any(|a| matches!(a.as_str(), "sts:AssumeRole" | "sts:*" | "*"))
            && list(&s["Principal"]["Service"]).iter().any(|p| p == TASKS_PRINCIPAL)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trust_policy_for_ecs_tasks_is_recognised_encoded_or_not() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;
        assert!(trusts_ecs_tasks(doc));
        let encoded = percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert!(trusts_ecs_tasks(&encoded));
    }

    #[test]
    fn a_trust_policy_for_another_service_or_a_deny_is_not_enough() {
        let lambda =
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert!(!trusts_ecs_tasks(lambda));
        let deny =
            r#"{"Statement":{"Effect":"Deny","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert!(!trusts_ecs_tasks(deny));
        assert!(!trusts_ecs_tasks("not json"));
    }
}
