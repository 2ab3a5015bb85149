//! The `appspec.yml` checks ferry runs before anything leaves the machine.
//!
//! CodeDeploy only reads the appspec on the instance, minutes into a
//! deployment; a typo found there has already cost a deployment and possibly
//! a failed instance. These checks catch what can be known from the bundle.

use serde::Deserialize;

/// The file name CodeDeploy requires at the bundle's root (EC2/on-premises).
pub const FILE_NAME: &str = "appspec.yml";

/// The parts of an appspec that ferry checks.
#[derive(Debug, Deserialize)]
pub struct AppSpec {
    /// Must be `0.0`, the only version CodeDeploy accepts for EC2.
    pub version: serde_yaml_ng::Value,
    /// `linux` or `windows`.
    pub os: Option<String>,
}

/// What is wrong with an appspec, phrased as cause and fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

/// Parses `text` and returns every problem found (empty = fine).
pub fn check(text: &str) -> Vec<Problem> {
    let spec: AppSpec = match serde_yaml_ng::from_str(text) {
        Ok(spec) => spec,
        Err(e) => {
            let place = e.location().map(|l| format!(" at line {}, column {}", l.line(), l.column())).unwrap_or_default();
            return vec![Problem(format!(
                "{FILE_NAME} is not valid YAML{place}: {e}. Fix the indentation or quoting there (YAML forbids tabs)."
            ))];
        }
    };
    let mut problems = Vec::new();
    let version_ok = match &spec.version {
        serde_yaml_ng::Value::Number(n) => n.as_f64() == Some(0.0),
        serde_yaml_ng::Value::String(s) => s == "0.0",
        _ => false,
    };
    if !version_ok {
        problems.push(Problem(format!(
            "{FILE_NAME} has `version: {}`; CodeDeploy only accepts `version: 0.0`.",
            yaml_scalar(&spec.version)
        )));
    }
    match spec.os.as_deref() {
        Some("linux") | Some("windows") => {}
        Some(other) => problems.push(Problem(format!(
            "{FILE_NAME} has `os: {other}`; use `os: linux` or `os: windows`."
        ))),
        None => problems.push(Problem(format!("{FILE_NAME} has no `os:` key; add `os: linux` (or `windows`)."))),
    }
    problems
}

fn yaml_scalar(v: &serde_yaml_ng::Value) -> String {
    serde_yaml_ng::to_string(v).map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_appspec_passes() {
        assert!(check("version: 0.0\nos: linux\n").is_empty());
    }

    #[test]
    fn wrong_version_is_reported() {
        let p = check("version: 1.0\nos: linux\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].0.contains("version: 0.0"), "{:?}", p);
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let p = check("version: 0.0\nos: linux\nhooks:\n\t- bad\n");
        assert!(p[0].0.contains("line"), "{:?}", p);
    }

    #[test]
    fn unknown_os_is_reported() {
        let p = check("version: 0.0\nos: macos\n");
        assert!(p[0].0.contains("os: macos"), "{:?}", p);
    }
}
