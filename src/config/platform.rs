//! What an environment's deployments change: instances (`Server`), a
//! Lambda function's alias, or an ECS service's task sets, from
//! `compute_platform` and the keys of each platform.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{ConfigError, EnvSettings};

/// The lifecycle events a Lambda deployment runs hook functions for.
pub const LAMBDA_HOOK_EVENTS: [&str; 2] = ["BeforeAllowTraffic", "AfterAllowTraffic"];

/// The lifecycle events an ECS deployment runs hook functions for, in the
/// order CodeDeploy runs them.
pub const ECS_HOOK_EVENTS: [&str; 5] =
    ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"];

/// The CodeDeploy compute platform an environment deploys to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Platform {
    /// EC2/on-premises instances: the bundle is the revision.
    #[default]
    Server,
    /// A Lambda function: the bundle is its code, the revision an appspec
    /// that moves the alias to the version published from it.
    Lambda(LambdaFunction),
    /// An ECS service: the release is an image, the revision an appspec
    /// naming the task definition registered with it.
    Ecs(EcsService),
}

impl Platform {
    /// The Lambda function, when the environment deploys one.
    pub fn lambda(&self) -> Option<&LambdaFunction> {
        match self {
            Platform::Lambda(f) => Some(f),
            _ => None,
        }
    }

    /// The ECS service, when the environment deploys one.
    pub fn ecs(&self) -> Option<&EcsService> {
        match self {
            Platform::Ecs(s) => Some(s),
            _ => None,
        }
    }

    /// CodeDeploy's name for the platform, as `compute_platform` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Platform::Server => "Server",
            Platform::Lambda(_) => "Lambda",
            Platform::Ecs(_) => "ECS",
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

/// What ferry.toml says of an ECS environment. Every field but the hooks
/// may be left unset: the deployment group names the cluster and service,
/// the service's load balancer the container and port, and the service's
/// current task definition is the one a release copies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcsService {
    /// `ecs_cluster`.
    pub cluster: Option<String>,
    /// `ecs_service`.
    pub service: Option<String>,
    /// `container_name`.
    pub container: Option<String>,
    /// `container_port`.
    pub container_port: Option<u16>,
    /// `task_definition`: a task definition file kept in the repo.
    pub task_definition: Option<PathBuf>,
    /// Hook function by lifecycle event (one of [`ECS_HOOK_EVENTS`]).
    pub hooks: BTreeMap<String, String>,
}

/// Reads the platform keys: `Lambda` needs a function and an alias; the
/// keys of one platform on another's environment are a mistake, said so.
pub(super) fn platform(env: &str, keys: &EnvSettings) -> Result<Platform, ConfigError> {
    let set = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let (function, alias) = (set(&keys.function_name), set(&keys.function_alias));
    let hooks = keys.lambda_hooks.clone().unwrap_or_default();
    let ecs_keys: Vec<&'static str> = [
        ("ecs_cluster", keys.ecs_cluster.is_some()),
        ("ecs_service", keys.ecs_service.is_some()),
        ("container_name", keys.container_name.is_some()),
        ("container_port", keys.container_port.is_some()),
        ("task_definition", keys.task_definition.is_some()),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| k)
    .collect();
    let lambda_keys: Vec<&'static str> = [("function_name", function.is_some()), ("function_alias", alias.is_some())]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
    let chosen = match set(&keys.compute_platform).as_deref() {
        None if function.is_some() => "Lambda",
        None => "Server",
        Some("Server") => "Server",
        Some("Lambda") => "Lambda",
        Some("ECS") => "ECS",
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: "compute_platform",
                value: other.into(),
                reason: "ferry deploys \"Server\" (EC2/on-premises), \"Lambda\" and \"ECS\" (spelt as CodeDeploy spells them)"
                    .into(),
            });
        }
    };
    let misplaced = |keys: &[&'static str], belong: &str| ConfigError::Invalid {
        key: "compute_platform",
        value: chosen.into(),
        reason: format!(
            "`{}` only apply to {belong} environment: set compute_platform = \"{}\" or remove them",
            keys.join("`, `"),
            if belong == "a Lambda" { "Lambda" } else { "ECS" }
        ),
    };
    if chosen != "ECS" && !ecs_keys.is_empty() {
        return Err(misplaced(&ecs_keys, "an ECS"));
    }
    if chosen != "Lambda" && !lambda_keys.is_empty() {
        return Err(misplaced(&lambda_keys, "a Lambda"));
    }
    let hook_events: &[&str] = match chosen {
        "Server" => {
            if let Some(event) = hooks.keys().next() {
                return Err(ConfigError::Invalid {
                    key: "lambda_hooks",
                    value: event.clone(),
                    reason: "hook functions only apply to Lambda and ECS environments; an EC2/on-premises deployment runs \
                             the appspec's hook scripts on each instance"
                        .into(),
                });
            }
            return Ok(Platform::Server);
        }
        "Lambda" => &LAMBDA_HOOK_EVENTS,
        _ => &ECS_HOOK_EVENTS,
    };
    if let Some(event) = hooks.keys().find(|e| !hook_events.contains(&e.as_str())) {
        return Err(ConfigError::Invalid {
            key: "lambda_hooks",
            value: event.clone(),
            reason: format!("a {chosen} deployment runs hooks for {} only", hook_events.join(", ")),
        });
    }
    if chosen == "ECS" {
        if keys.container_port == Some(0) {
            return Err(ConfigError::Invalid {
                key: "container_port",
                value: "0".into(),
                reason: "a container port is 1-65535".into(),
            });
        }
        return Ok(Platform::Ecs(EcsService {
            cluster: set(&keys.ecs_cluster),
            service: set(&keys.ecs_service),
            container: set(&keys.container_name),
            container_port: keys.container_port,
            task_definition: keys.task_definition.clone().filter(|p| !p.as_os_str().is_empty()),
            hooks,
        }));
    }
    let missing: Vec<&'static str> = [("function_name", &function), ("function_alias", &alias)]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::Missing { env: env.into(), keys: missing });
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
        assert!(platform("prod", &keys(Some("Fargate"), None, None)).unwrap_err().to_string().contains("\"ECS\""));
    }

    #[test]
    fn an_ecs_environment_needs_no_keys_and_takes_its_hooks() {
        let mut k = keys(Some("ECS"), None, None);
        assert_eq!(platform("prod", &k).unwrap(), Platform::Ecs(EcsService::default()));
        k.ecs_service = Some("web".into());
        k.container_port = Some(8080);
        k.lambda_hooks = Some(BTreeMap::from([("AfterAllowTestTraffic".to_string(), "smoke".to_string())]));
        let ecs = platform("prod", &k).unwrap();
        let ecs = ecs.ecs().unwrap();
        assert_eq!((ecs.service.as_deref(), ecs.container_port), (Some("web"), Some(8080)));
        assert_eq!(ecs.hooks["AfterAllowTestTraffic"], "smoke");
    }

    #[test]
    fn ecs_keys_elsewhere_and_hooks_ecs_does_not_run_are_refused() {
        let mut k = keys(None, None, None);
        k.ecs_service = Some("web".into());
        let e = platform("prod", &k).unwrap_err().to_string();
        assert!(e.contains("`ecs_service`") && e.contains("compute_platform = \"ECS\""), "{e}");
        let mut k = keys(Some("ECS"), Some("checkout"), None);
        assert!(platform("prod", &k).unwrap_err().to_string().contains("`function_name`"));
        k.function_name = None;
        k.lambda_hooks = Some(BTreeMap::from([("ApplicationStart".to_string(), "fn".to_string())]));
        let e = platform("prod", &k).unwrap_err().to_string();
        assert!(e.contains("AfterAllowTestTraffic"), "{e}");
        let mut k = keys(None, None, None);
        k.lambda_hooks = Some(BTreeMap::from([("BeforeAllowTraffic".to_string(), "fn".to_string())]));
        assert!(platform("prod", &k).unwrap_err().to_string().contains("hook scripts"));
    }
}
