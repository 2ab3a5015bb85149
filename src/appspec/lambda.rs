//! The appspec of a Lambda deployment, which ferry writes itself: one
//! `AWS::Lambda::Function` resource (function, alias, the version the alias
//! is on and the one published from the bundle) and the environment's hook
//! functions; and reading one back (`ferry rollback` finds versions in the
//! group's earlier deployments).

use crate::config::LambdaFunction;

/// The versions a Lambda appspec moves the alias between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions {
    /// The version the alias points at when the deployment starts.
    pub current: String,
    /// The version it points at when the deployment succeeds.
    pub target: String,
}

/// The appspec (YAML) moving `function`'s alias from `v.current` to
/// `v.target`, with its hook functions. Every scalar is a JSON string (a
/// valid YAML double-quoted scalar), so no name or version can break it.
pub fn write(function: &LambdaFunction, v: &Versions) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut text = format!(
        "version: 0.0\nResources:\n  - {}:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: {}\n        \
         Alias: {}\n        CurrentVersion: {}\n        TargetVersion: {}\n",
        q(&function.name),
        q(&function.name),
        q(&function.alias),
        q(&v.current),
        q(&v.target)
    );
    if !function.hooks.is_empty() {
        text.push_str("Hooks:\n");
        // The order CodeDeploy runs them in, whatever the table's order.
        for event in crate::config::LAMBDA_HOOK_EVENTS {
            if let Some(f) = function.hooks.get(event) {
                text.push_str(&format!("  - {event}: {}\n", q(f)));
            }
        }
    }
    text
}

/// The function's versions as a Lambda appspec (YAML or JSON) names them;
/// `None` when it is not one.
pub fn versions(text: &str) -> Option<Versions> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let resource = doc.get("Resources")?.as_sequence()?.first()?.as_mapping()?.values().next()?.clone();
    let props = resource.get("Properties")?;
    let field = |k: &str| match props.get(k)? {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(Versions { current: field("CurrentVersion")?, target: field("TargetVersion")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function() -> LambdaFunction {
        LambdaFunction {
            name: "checkout".into(),
            alias: "live".into(),
            hooks: [("AfterAllowTraffic".to_string(), "post\"x".to_string()), ("BeforeAllowTraffic".into(), "pre".into())].into(),
        }
    }

    #[test]
    fn the_written_appspec_reads_back_with_its_versions_and_hooks_in_run_order() {
        let v = Versions { current: "2".into(), target: "3".into() };
        let text = write(&function(), &v);
        assert_eq!(versions(&text), Some(v));
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let hooks = doc["Hooks"].as_sequence().unwrap();
        assert_eq!(hooks[0]["BeforeAllowTraffic"].as_str(), Some("pre"));
        assert_eq!(hooks[1]["AfterAllowTraffic"].as_str(), Some("post\"x"), "quoted, not broken");
        assert_eq!(doc["Resources"][0]["checkout"]["Properties"]["Alias"].as_str(), Some("live"));
    }

    #[test]
    fn an_appspec_of_instances_has_no_versions() {
        assert_eq!(versions("version: 0.0\nos: linux\nfiles: []\n"), None);
    }
}
