//! What an environment's deployments change: instances (`Server`) or a
//! Lambda function's alias, from `compute_platform`, `function_name`,
//! `function_alias` and `lambda_hooks`.

use std::collections::BTreeMap;

use super::{ConfigError, EnvSettings};

/// The lifecycle events a Lambda deployment runs hook functions for.
pub const LAMBDA_HOOK_EVENTS: [&str; 2] = ["BeforeAllowTraffic", "AfterAllowTraffic"];

/// The CodeDeploy compute platform an environment deploys to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Platform {
    /// EC2/on-premises instances: the bundle is the revision.
    #[default]
    Server,
    /// A Lambda function: the bundle is its code, the revision an appspec
    /// that moves the alias to the version published from it.
    Lambda(LambdaFunction),
}

impl Platform {
    /// The Lambda function, when the environment deploys one.
    pub fn lambda(&self) -> Option<&LambdaFunction> {
        match self {
            Platform::Lambda(f) => Some(f),
            Platform::Server => None,
        }
    }
}

/// The function, alias and hook functions of a Lambda environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LambdaFunction {
    /// The function's name.
    pub name: String,
    /// The alias whose traffic moves.
    pub alias: String,
    /// Hook function by lifecycle event (BeforeAllowTraffic, AfterAllowTraffic).
    pub hooks: BTreeMap<String, String>,
}

/// Reads the platform keys: `Lambda` needs a function and an alias; the
/// Lambda keys on a `Server` environment are a mistake, said so.
pub(super) fn platform(env: &str, keys: &EnvSettings) -> Result<Platform, ConfigError> {
    let set = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let (function, alias) = (set(&keys.function_name), set(&keys.function_alias));
    let hooks = keys.lambda_hooks.clone().unwrap_or_default();
    let lambda = match set(&keys.compute_platform).as_deref() {
        None => function.is_some(),
        Some("Lambda") => true,
        Some("Server") => false,
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: "compute_platform",
                value: other.into(),
                reason: "ferry deploys \"Server\" (EC2/on-premises) and \"Lambda\"; ECS is not supported yet".into(),
            });
        }
    };
    if !lambda {
        if let Some(f) = function.or(alias).or(hooks.keys().next().cloned()) {
            return Err(ConfigError::Invalid {
                key: "compute_platform",
                value: "Server".into(),
                reason: format!(
                    "`function_name`, `function_alias` and `lambda_hooks` ({f}) only apply to a Lambda environment: set \
                     compute_platform = \"Lambda\" or remove them"
                ),
            });
        }
        return Ok(Platform::Server);
    }
    let missing: Vec<&'static str> = [("function_name", &function), ("function_alias", &alias)]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::Missing { env: env.into(), keys: missing });
    }
    if let Some(event) = hooks.keys().find(|e| !LAMBDA_HOOK_EVENTS.contains(&e.as_str())) {
        return Err(ConfigError::Invalid {
            key: "lambda_hooks",
            value: event.clone(),
            reason: format!("a Lambda deployment runs hooks for {} only", LAMBDA_HOOK_EVENTS.join(" and ")),
        });
    }
    Ok(Platform::Lambda(LambdaFunction { name: function.unwrap_or_default(), alias: alias.unwrap_or_default(), hooks }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(platform: Option<&str>, function: Option<&str>, alias: Option<&str>) -> EnvSettings {
        EnvSettings {
            compute_platform: platform.map(String::from),
            function_name: function.map(String::from),
            function_alias: alias.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn a_function_name_makes_a_lambda_environment_and_needs_an_alias() {
        let p = platform("prod", &keys(None, Some("checkout"), Some("live"))).unwrap();
        assert_eq!(p.lambda().map(|f| (f.name.as_str(), f.alias.as_str())), Some(("checkout", "live")));
        let e = platform("prod", &keys(Some("Lambda"), Some("checkout"), None)).unwrap_err();
        assert!(e.to_string().contains("function_alias"), "{e}");
        assert_eq!(platform("prod", &keys(None, None, None)).unwrap(), Platform::Server);
    }

    #[test]
    fn lambda_keys_on_a_server_environment_and_unknown_hooks_are_refused() {
        let e = platform("prod", &keys(Some("Server"), Some("checkout"), Some("live"))).unwrap_err();
        assert!(e.to_string().contains("compute_platform = \"Lambda\""), "{e}");
        let mut k = keys(Some("Lambda"), Some("checkout"), Some("live"));
        k.lambda_hooks = Some(BTreeMap::from([("AfterInstall".to_string(), "fn".to_string())]));
        assert!(platform("prod", &k).unwrap_err().to_string().contains("BeforeAllowTraffic"));
        assert!(platform("prod", &keys(Some("ECS"), None, None)).unwrap_err().to_string().contains("ECS"));
    }
}
