//! Enforcing one identity policy on the callers the way IAM would, so a test
//! can prove a policy grants exactly what a client does against CodeDeploy.
//!
//! For each request: the action is `codedeploy:<Operation>`; the resources
//! are the ARNs of the resource types that AWS's Service Authorization
//! Reference lists for that action (see [`scope`]), or `*` for the actions
//! that support no resource type, which only a statement granting `"*"`
//! covers. The policy is evaluated like IAM's: an explicit `Deny` wins, else
//! some `Allow` must match, else the request is implicitly denied. Both
//! answer `AccessDeniedException` with AWS's message.
//!
//! The caller is told apart by the access key id in the SigV4
//! `Authorization` header (the signature itself is not verified); keys in
//! [`IdentityPolicy::exempt_access_keys`] are not checked. Whoever issued the
//! keys (moto, in ferry's test stack) may say who is behind one through a
//! [`CallerResolver`]: then AccessDenied names that caller, and a role
//! session's own session policy is enforced too (a request must be allowed
//! by both, and an explicit deny in either refuses it), as on AWS.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::protocol::ApiError;
use crate::store::Shared;

/// The identity policy the emulator enforces, and on whom.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    /// The policy document (`{"Version": …, "Statement": …}`).
    pub document: Value,
    /// The caller named in AccessDenied messages (`User: …`). The emulator
    /// cannot learn a role session's name from its access key, so this is
    /// whatever the configuration says.
    pub principal_arn: String,
    /// Access key ids whose requests are not checked (a test's own
    /// administrative identity, the agent's).
    pub exempt_access_keys: BTreeSet<String>,
    /// Says who is behind an access key; `None` names [`Self::principal_arn`]
    /// in every message and knows no session policies.
    pub resolver: Option<CallerResolver>,
}

/// Who is behind an access key.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The caller's ARN, e.g. `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// The session policy passed to AssumeRole, if any.
    pub session_policy: Option<Value>,
}

/// Looks up the [`Caller`] behind an access key id. Called once per key (the
/// answer is cached); it may block briefly.
#[derive(Clone)]
pub struct CallerResolver(pub Arc<ResolveCaller>);

/// Maps an access key id to the caller it belongs to.
pub type ResolveCaller = dyn Fn(&str) -> Option<Caller> + Send + Sync;

impl std::fmt::Debug for CallerResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerResolver(..)")
    }
}

impl IdentityPolicy {
    /// Parses a policy document and checks its structure.
    pub fn parse(document: &str, principal_arn: &str, exempt_access_keys: BTreeSet<String>) -> Result<Self, String> {
        let document: Value = serde_json::from_str(document).map_err(|e| format!("the identity policy is not JSON: {e}"))?;
        for statement in statements(&document)? {
            check_statement(statement)?;
        }
        Ok(IdentityPolicy { document, principal_arn: principal_arn.to_string(), exempt_access_keys, resolver: None })
    }
}

fn statements(document: &Value) -> Result<Vec<&Value>, String> {
    match document.get("Statement") {
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(one @ Value::Object(_)) => Ok(vec![one]),
        _ => Err("the identity policy has no Statement".into()),
    }
}

fn check_statement(s: &Value) -> Result<(), String> {
    match s.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        other => return Err(format!("a statement's Effect must be Allow or Deny, not {other:?}: {s}")),
    }
    if s.get("Principal").is_some() || s.get("NotPrincipal").is_some() {
        return Err(format!("an identity policy names no Principal: {s}"));
    }
    let one_of = |a: &str, b: &str| match (s.get(a), s.get(b)) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => Err(format!("a statement needs exactly one of {a} and {b}: {s}")),
    };
    one_of("Action", "NotAction")?;
    one_of("Resource", "NotResource")
}

/// The resource type an action is scoped to in the Service Authorization
/// Reference (`list_awscodedeploy.html`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No resource type: the action must be granted on `"Resource": "*"`.
    Any,
    /// `arn:…:codedeploy:REGION:ACCOUNT:application:NAME`.
    Application,
    /// `arn:…:codedeploy:REGION:ACCOUNT:deploymentgroup:APP/GROUP`.
    DeploymentGroup,
    /// `arn:…:codedeploy:REGION:ACCOUNT:deploymentconfig:NAME`.
    DeploymentConfig,
}

/// The scope of each operation the emulator implements, from the
/// reference; `None` for an operation it does not implement.
pub fn scope(operation: &str) -> Option<Scope> {
    use Scope::*;
    Some(match operation {
        "CreateApplication" | "GetApplication" | "DeleteApplication" | "BatchGetApplications" => Application,
        "ListDeploymentGroups" => Application,
        "RegisterApplicationRevision"
        | "GetApplicationRevision"
        | "ListApplicationRevisions"
        | "BatchGetApplicationRevisions" => Application,
        "CreateDeploymentGroup" | "GetDeploymentGroup" | "DeleteDeploymentGroup" | "BatchGetDeploymentGroups" => DeploymentGroup,
        "CreateDeployment" | "GetDeployment" | "BatchGetDeployments" | "ListDeployments" => DeploymentGroup,
        "ListDeploymentInstances" | "BatchGetDeploymentInstances" | "GetDeploymentInstance" => DeploymentGroup,
        "CreateDeploymentConfig" | "GetDeploymentConfig" | "DeleteDeploymentConfig" => DeploymentConfig,
        "ListApplications" | "ListDeploymentConfigs" => Any,
        "StopDeployment"
        | "ContinueDeployment"
        | "PutLifecycleEventHookExecutionStatus"
        | "ListDeploymentTargets"
        | "BatchGetDeploymentTargets"
        | "GetDeploymentTarget" => Any,
        _ => return None,
    })
}

/// The access key id of a SigV4 `Authorization` header.
pub fn access_key_id(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().filter(|k| !k.is_empty())
}

/// Refuses the request unless the configured policy allows `operation` on
/// every resource it touches. Requests whose resources cannot be named
/// (a required name missing, an unknown deployment id) are left to the
/// operation, which answers its own validation error.
pub(crate) fn authorize(shared: &Shared, headers: &HeaderMap, operation: &str, input: &Value) -> Result<(), ApiError> {
    let Some(policy) = &shared.config.identity_policy else { return Ok(()) };
    let key = access_key_id(headers).unwrap_or_default();
    if policy.exempt_access_keys.contains(key) {
        return Ok(());
    }
    let Some(scope) = scope(operation) else { return Ok(()) };
    let Some(resources) = resources(shared, operation, scope, input) else { return Ok(()) };
    let caller = shared.caller(key, policy);
    let user = caller.as_ref().map_or(policy.principal_arn.as_str(), |c| c.arn.as_str());
    let action = format!("codedeploy:{operation}");
    let refuse = |resource: &str, why: String| {
        ApiError::new(
            "AccessDeniedException",
            format!("User: {user} is not authorized to perform: {action} on resource: {resource} {why}"),
        )
    };
    for resource in &resources {
        let identity = evaluate(&policy.document, &action, resource);
        let session = caller.as_ref().and_then(|c| c.session_policy.as_ref()).map(|p| evaluate(p, &action, resource));
        match (identity, session) {
            (Decision::ExplicitDeny, _) => {
                return Err(refuse(resource, "with an explicit deny in an identity-based policy".into()));
            }
            (_, Some(Decision::ExplicitDeny)) => {
                return Err(refuse(resource, "with an explicit deny in a session policy".into()));
            }
            (Decision::ImplicitDeny, _) => {
                return Err(refuse(resource, format!("because no identity-based policy allows the {action} action")));
            }
            (_, Some(Decision::ImplicitDeny)) => {
                return Err(refuse(resource, format!("because no session policy allows the {action} action")));
            }
            (Decision::Allow, _) => {}
        }
    }
    Ok(())
}

/// The resource ARNs a request touches under its action's scope.
fn resources(shared: &Shared, operation: &str, scope: Scope, input: &Value) -> Option<Vec<String>> {
    let prefix = format!("arn:aws:codedeploy:{}:{}", shared.config.region, shared.config.account_id);
    let text = |key: &str| input.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let texts = |key: &str| -> Option<Vec<String>> {
        let items = input.get(key)?.as_array()?;
        Some(items.iter().filter_map(Value::as_str).map(String::from).collect())
    };
    let app = |name: &str| format!("{prefix}:application:{name}");
    let group = |app: &str, group: &str| format!("{prefix}:deploymentgroup:{app}/{group}");
    let group_of_deployment = |id: &str| {
        let store = shared.lock();
        store.deployments.get(id).map(|d| group(&d.application_name, &d.group_name))
    };
    Some(match scope {
        Scope::Any => vec!["*".to_string()],
        Scope::Application => match operation {
            "BatchGetApplications" => texts("applicationNames")?.iter().map(|n| app(n)).collect(),
            _ => vec![app(text("applicationName")?)],
        },
        Scope::DeploymentConfig => vec![format!("{prefix}:deploymentconfig:{}", text("deploymentConfigName")?)],
        Scope::DeploymentGroup => match operation {
            "BatchGetDeploymentGroups" => {
                let a = text("applicationName")?;
                texts("deploymentGroupNames")?.iter().map(|g| group(a, g)).collect()
            }
            "BatchGetDeployments" => texts("deploymentIds")?.iter().filter_map(|id| group_of_deployment(id)).collect(),
            "GetDeployment" | "ListDeploymentInstances" | "BatchGetDeploymentInstances" | "GetDeploymentInstance" => {
                vec![group_of_deployment(text("deploymentId")?)?]
            }
            // Listing every group's deployments names no group.
            "ListDeployments" if text("applicationName").is_none() && text("deploymentGroupName").is_none() => {
                vec!["*".to_string()]
            }
            _ => vec![group(text("applicationName")?, text("deploymentGroupName")?)],
        },
    })
}

/// IAM's answer for one action on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Some Allow statement matches and no Deny does.
    Allow,
    /// A Deny statement matches.
    ExplicitDeny,
    /// Nothing matches.
    ImplicitDeny,
}

/// Evaluates an identity policy for `action` on `resource`.
///
/// `Action`/`NotAction` match case-insensitively, `Resource`/`NotResource`
/// case-sensitively, both with IAM's `*` and `?` wildcards. A statement with
/// a `Condition` cannot be decided here: it is taken to apply when it denies
/// and not to apply when it allows, so the emulator never grants more than
/// AWS would.
pub fn evaluate(document: &Value, action: &str, resource: &str) -> Decision {
    let Ok(statements) = statements(document) else { return Decision::ImplicitDeny };
    let mut allowed = false;
    for s in statements {
        let deny = s.get("Effect").and_then(Value::as_str) == Some("Deny");
        let action_matches = match (s.get("Action"), s.get("NotAction")) {
            (Some(a), _) => any(a, |p| glob(p, action, true)),
            (None, Some(na)) => !any(na, |p| glob(p, action, true)),
            _ => false,
        };
        let resource_matches = match (s.get("Resource"), s.get("NotResource")) {
            (Some(r), _) => any(r, |p| glob(p, resource, false)),
            (None, Some(nr)) => !any(nr, |p| glob(p, resource, false)),
            _ => false,
        };
        if !(action_matches && resource_matches) {
            continue;
        }
        let conditional = s.get("Condition").is_some_and(|c| c.as_object().is_none_or(|m| !m.is_empty()));
        if deny {
            return Decision::ExplicitDeny;
        }
        if !conditional {
            allowed = true;
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

fn any(patterns: &Value, mut f: impl FnMut(&str) -> bool) -> bool {
    match patterns {
        Value::String(p) => f(p),
        Value::Array(items) => items.iter().filter_map(Value::as_str).any(f),
        _ => false,
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let norm = |s: &str| if case_insensitive { s.to_lowercase() } else { s.to_string() };
    let p: Vec<char> = norm(pattern).chars().collect();
    let t: Vec<char> = norm(text).chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GROUP: &str = "arn:aws:codedeploy:us-east-1:222222222222:deploymentgroup:web/web-prod";

    #[test]
    fn wildcards_match_like_iam() {
        assert!(glob("codedeploy:*", "codedeploy:StopDeployment", true));
        assert!(glob("CodeDeploy:stop*", "codedeploy:StopDeployment", true));
        assert!(glob("codedeploy:Get?eployment", "codedeploy:GetDeployment", true));
        assert!(!glob("codedeploy:Get?eployment", "codedeploy:GetDeploymentGroup", true));
        assert!(glob("arn:aws:codedeploy:*:*:deploymentgroup:web/*", GROUP, false));
        assert!(!glob("arn:aws:codedeploy:*:*:deploymentgroup:WEB/*", GROUP, false), "resources are case-sensitive");
        assert!(glob("*", "*", false));
        assert!(!glob(GROUP, "*", false), "a group ARN does not cover the `*` of a no-resource action");
        assert!(!glob("arn:aws:codedeploy:*", "*", false));
    }

    #[test]
    fn deny_wins_and_nothing_is_allowed_by_default() {
        let allow_all = json!({ "Statement": [{ "Effect": "Allow", "Action": "codedeploy:*", "Resource": "*" }] });
        assert_eq!(evaluate(&allow_all, "codedeploy:StopDeployment", "*"), Decision::Allow);
        let with_deny = json!({ "Statement": [
            { "Effect": "Allow", "Action": "codedeploy:*", "Resource": "*" },
            { "Effect": "Deny", "Action": "codedeploy:StopDeployment", "Resource": "*" }
        ] });
        assert_eq!(evaluate(&with_deny, "codedeploy:StopDeployment", "*"), Decision::ExplicitDeny);
        assert_eq!(evaluate(&with_deny, "codedeploy:GetDeployment", GROUP), Decision::Allow);
        assert_eq!(evaluate(&json!({ "Statement": [] }), "codedeploy:GetDeployment", GROUP), Decision::ImplicitDeny);
    }

    #[test]
    fn not_action_and_not_resource_invert_the_match() {
        let doc = json!({ "Statement": { "Effect": "Allow", "NotAction": "codedeploy:Delete*", "NotResource": "arn:aws:codedeploy:*:*:application:secret" } });
        assert_eq!(evaluate(&doc, "codedeploy:GetDeployment", GROUP), Decision::Allow);
        assert_eq!(evaluate(&doc, "codedeploy:DeleteApplication", GROUP), Decision::ImplicitDeny);
        let secret = "arn:aws:codedeploy:us-east-1:1:application:secret";
        assert_eq!(evaluate(&doc, "codedeploy:GetApplication", secret), Decision::ImplicitDeny);
    }

    #[test]
    fn conditions_never_widen_what_is_allowed() {
        let doc = json!({ "Statement": [
            { "Effect": "Allow", "Action": "codedeploy:*", "Resource": "*", "Condition": { "StringEquals": { "aws:RequestedRegion": "us-east-1" } } }
        ] });
        assert_eq!(evaluate(&doc, "codedeploy:GetDeployment", GROUP), Decision::ImplicitDeny);
        let doc = json!({ "Statement": [
            { "Effect": "Allow", "Action": "codedeploy:*", "Resource": "*" },
            { "Effect": "Deny", "Action": "codedeploy:*", "Resource": "*", "Condition": { "Bool": { "aws:SecureTransport": "false" } } }
        ] });
        assert_eq!(evaluate(&doc, "codedeploy:GetDeployment", GROUP), Decision::ExplicitDeny);
    }

    #[test]
    fn the_access_key_comes_from_the_credential_scope() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20240101/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .unwrap(),
        );
        assert_eq!(access_key_id(&headers), Some("ASIAEXAMPLE"));
    }

    #[test]
    fn malformed_policies_are_refused() {
        let none = BTreeSet::new();
        assert!(IdentityPolicy::parse("{", "u", none.clone()).is_err());
        assert!(IdentityPolicy::parse(r#"{"Version":"2012-10-17"}"#, "u", none.clone()).is_err());
        let with_principal = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
        assert!(IdentityPolicy::parse(with_principal, "u", none.clone()).is_err());
        let both = r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x","Resource":"*"}]}"#;
        assert!(IdentityPolicy::parse(both, "u", none.clone()).is_err());
        let fine = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"codedeploy:*","Resource":"*"}]}"#;
        assert!(IdentityPolicy::parse(fine, "u", none).is_ok());
    }

    #[test]
    fn every_operation_the_emulator_implements_has_a_scope() {
        for op in crate::ops::OPERATIONS {
            assert!(scope(op).is_some(), "{op} has no IAM scope");
        }
    }
}
