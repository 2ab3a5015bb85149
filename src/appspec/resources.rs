//! The appspec of an ECS or Lambda deployment, as a user writes it
//! (`appspec.yaml` or `appspec.json`): checked by `ferry check` before
//! CodeDeploy sees it, every problem with its line and fix.
//!
//! CodeDeploy reads these itself, when the deployment is created: one
//! `AWS::ECS::Service` or `AWS::Lambda::Function` resource under
//! `Resources`, and `Hooks` naming the Lambda function run at each
//! lifecycle event. The rules are AWS's ("AppSpec 'resources' section",
//! "AppSpec 'hooks' section"): Lambda versions are positive integers (so
//! `$LATEST` is refused), an ECS task definition is given by its ARN, a
//! container port is 1-65535, `AssignPublicIp` is ENABLED or DISABLED, and
//! only the platform's own lifecycle events take hooks. CodeDeploy's
//! examples spell the keys both `Resources` and `resources`: both are read.

use super::Problem;
use super::psych::{self, Node, Value};
use crate::config::{ECS_HOOK_EVENTS, LAMBDA_HOOK_EVENTS};

/// The resource type of a Lambda deployment.
pub const LAMBDA_TYPE: &str = "AWS::Lambda::Function";
/// The resource type of an ECS deployment.
pub const ECS_TYPE: &str = "AWS::ECS::Service";
/// The most subnets an awsvpc configuration takes (ECS's limit).
const MAX_SUBNETS: usize = 16;
/// The most security groups an awsvpc configuration takes (ECS's limit).
const MAX_SECURITY_GROUPS: usize = 5;

/// Whether `text` is an ECS or Lambda appspec (a top-level `Resources`
/// key) rather than one for EC2/on-premises instances.
pub fn describes_resources(text: &str) -> bool {
    let Ok(serde_yaml_ng::Value::Mapping(top)) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return false;
    };
    top.keys().any(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case("Resources")))
}

/// Checks an ECS or Lambda appspec (YAML or JSON); empty when CodeDeploy
/// would accept it.
pub fn check(text: &str) -> Vec<Problem> {
    let mut c = Checker { problems: Vec::new() };
    c.run(text);
    c.problems
}

struct Checker {
    problems: Vec<Problem>,
}

/// A key looked up as CodeDeploy does: its documented capitalised spelling
/// or the all-lowercase one of AWS's examples.
fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .rev()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v)
            .filter(|v| !v.is_nil()),
        _ => None,
    }
}

/// A scalar as the text CodeDeploy reads (a version is often written as a number).
fn text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(_) | Value::Bool(_) => node.plain.clone(),
        _ => None,
    }
}

impl Checker {
    fn at(&mut self, line: Option<usize>, message: String) {
        self.problems.push(Problem { line, message });
    }

    fn run(&mut self, text: &str) {
        if let Some(p) = super::too_big(text) {
            self.problems.push(p);
            return;
        }
        if let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
            let line = e.location().map(|l| l.line());
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            self.at(
                line,
                format!(
                    "not valid YAML or JSON: {msg}. CodeDeploy refuses the deployment; fix the indentation, quoting or \
                     commas there."
                ),
            );
            return;
        }
        let doc = match psych::load(text) {
            Ok(doc) => doc,
            // Valid JSON that the YAML 1.1 reader cannot follow (tabs between
            // tokens): read it again laid out plainly, without its lines.
            Err(refusal) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => match psych::load(&serde_json::to_string_pretty(&v).unwrap_or_default()) {
                    Ok(doc) => doc.map(strip_lines),
                    Err(r) => return self.at(None, r.message),
                },
                Err(_) => {
                    return self.at(
                        Some(refusal.line),
                        "ferry reads no YAML aliases, merge keys or tags in an appspec: write the value out in full.".into(),
                    );
                }
            },
        };
        let Some(top) = doc.filter(|d| matches!(d.value, Value::Map(_))) else {
            return self.at(
                Some(1),
                "the file is not a mapping of keys: an ECS or Lambda appspec starts with `version: 0.0` and \
                 `Resources:`."
                    .into(),
            );
        };
        self.version(&top);
        let Some(kind) = self.resource(&top) else { return };
        self.hooks(&top, kind);
    }

    fn version(&mut self, top: &Node) {
        let Some(v) = get(top, "version") else {
            return self.at(None, "there is no `version:` key. Add `version: 0.0` as the first line.".into());
        };
        let ok = match &v.value {
            Value::Float(f) => *f == 0.0,
            Value::Int(i) => *i == 0,
            Value::Str(s) => s.trim() == "0.0",
            _ => false,
        };
        if !ok {
            self.at(
                Some(v.line),
                format!(
                    "`version: {}` is not a version CodeDeploy accepts: the only one is 0.0. Write `version: 0.0`.",
                    v.shown()
                ),
            );
        }
    }

    /// Checks the one resource; its type, when it is one ferry knows.
    fn resource(&mut self, top: &Node) -> Option<Kind> {
        let Some(resources) = get(top, "Resources") else {
            self.at(
                None,
                "there is no `Resources:` list, so this is no ECS or Lambda appspec. Name the one service or function \
                 under `Resources:`; an appspec for EC2/on-premises instances is named appspec.yml and has `files:` and \
                 `hooks:` (docs/appspec.md)."
                    .into(),
            );
            return None;
        };
        let items = match &resources.value {
            Value::Seq(items) => items,
            _ => {
                self.at(
                    Some(resources.line),
                    "`Resources` must be a list holding one resource (`- my-function:` or `- TargetService:`).".into(),
                );
                return None;
            }
        };
        let [item] = items.as_slice() else {
            self.at(
                Some(resources.line),
                format!(
                    "`Resources` lists {} resources; CodeDeploy deploys exactly one service or function per appspec. \
                     Keep one, and deploy the others with their own deployment groups.",
                    items.len()
                ),
            );
            return None;
        };
        let body = match &item.value {
            Value::Map(entries) if entries.len() == 1 => &entries[0].1,
            _ => {
                self.at(
                    Some(item.line),
                    "the resource must be a name with its `Type:` and `Properties:` under it (`- TargetService:` then \
                     `Type:` indented below)."
                        .into(),
                );
                return None;
            }
        };
        let ty = get(body, "Type");
        let kind = match ty.and_then(text).as_deref() {
            Some(LAMBDA_TYPE) => Kind::Lambda,
            Some(ECS_TYPE) => Kind::Ecs,
            _ => {
                self.at(
                    Some(ty.unwrap_or(body).line),
                    format!(
                        "the resource's Type is {}; CodeDeploy deploys `{ECS_TYPE}` (an ECS service) or `{LAMBDA_TYPE}` \
                         (a Lambda function's alias). Set `Type:` to one of them.",
                        ty.map(|t| format!("`{}`", t.shown())).unwrap_or_else(|| "missing".into())
                    ),
                );
                return None;
            }
        };
        let Some(props) = get(body, "Properties").filter(|p| matches!(p.value, Value::Map(_))) else {
            self.at(Some(body.line), format!("the {kind} resource has no `Properties:` mapping. Add it under `Type:`."));
            return Some(kind);
        };
        match kind {
            Kind::Lambda => self.lambda(props),
            Kind::Ecs => self.ecs(props),
        }
        Some(kind)
    }

    /// A required non-empty string property.
    fn required<'n>(&mut self, parent: &'n Node, key: &str, what: &str) -> Option<(&'n Node, String)> {
        match get(parent, key).map(|n| (n, text(n))) {
            Some((n, Some(s))) if !s.trim().is_empty() => Some((n, s)),
            Some((n, _)) => {
                self.at(Some(n.line), format!("`{key}` must be {what}, not `{}`. Write it as a string.", n.shown()));
                None
            }
            None => {
                self.at(Some(parent.line), format!("there is no `{key}:` (required: {what}). Add it."));
                None
            }
        }
    }

    fn lambda(&mut self, props: &Node) {
        self.required(props, "Name", "the function's name");
        if let Some((n, alias)) = self.required(props, "Alias", "the name of the alias whose traffic moves")
            && !alias_name(&alias)
        {
            self.at(
                Some(n.line),
                format!(
                    "`Alias: {alias}` is not an alias name: Lambda's are 1-128 letters, digits, `-` and `_`, not all \
                     digits (a version number is no alias). Name the alias, e.g. `live`."
                ),
            );
        }
        let current = self.version_number(props, "CurrentVersion", "the version the alias points at now");
        let target = self.version_number(props, "TargetVersion", "the version to move the alias onto");
        if let (Some((_, c)), Some((line, t))) = (current, target)
            && c == t
        {
            self.at(
                Some(line),
                format!(
                    "CurrentVersion and TargetVersion are both {t}: CodeDeploy refuses a deployment that moves the \
                     alias nowhere. Publish the new code as a version and name it in TargetVersion."
                ),
            );
        }
    }

    /// A Lambda version: a positive integer, as a number or a string.
    fn version_number(&mut self, props: &Node, key: &str, what: &str) -> Option<(usize, u64)> {
        let (n, s) = self.required(props, key, what)?;
        match s.trim().parse::<u64>() {
            Ok(v) if v > 0 && s.trim().bytes().all(|b| b.is_ascii_digit()) => Some((n.line, v)),
            _ if s.trim().eq_ignore_ascii_case("$LATEST") => {
                self.at(
                    Some(n.line),
                    format!(
                        "`{key}: $LATEST` is refused: CodeDeploy shifts traffic only between published versions \
                         (positive integers), and an alias cannot weigh $LATEST. Publish a version \
                         (`aws lambda publish-version`) and name its number."
                    ),
                );
                None
            }
            _ => {
                self.at(
                    Some(n.line),
                    format!(
                        "`{key}: {}` is not a version number: CodeDeploy takes a published version, a positive integer \
                         (e.g. `{key}: 3`).",
                        n.shown()
                    ),
                );
                None
            }
        }
    }

    fn ecs(&mut self, props: &Node) {
        if let Some((n, arn)) = self.required(props, "TaskDefinition", "the task definition's ARN")
            && !task_definition_arn(&arn)
        {
            self.at(
                Some(n.line),
                format!(
                    "`TaskDefinition: {arn}` is not a task definition ARN: CodeDeploy takes \
                     `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION` (the `taskDefinitionArn` that \
                     `aws ecs register-task-definition` prints)."
                ),
            );
        }
        match get(props, "LoadBalancerInfo") {
            Some(lb) if matches!(lb.value, Value::Map(_)) => {
                self.required(lb, "ContainerName", "the name of the container the load balancer sends traffic to");
                match get(lb, "ContainerPort") {
                    Some(Node { value: Value::Int(p), .. }) if (1..=65535).contains(p) => {}
                    Some(p) => self.at(
                        Some(p.line),
                        format!(
                            "`ContainerPort: {}` is not a port: write the container's port as a number, 1 to 65535.",
                            p.shown()
                        ),
                    ),
                    None => self.at(
                        Some(lb.line),
                        "there is no `ContainerPort:` (required: the container port the load balancer sends traffic \
                         to, 1 to 65535). Add it."
                            .into(),
                    ),
                }
            }
            Some(lb) => self.at(Some(lb.line), "`LoadBalancerInfo` must hold `ContainerName:` and `ContainerPort:`.".into()),
            None => self.at(
                Some(props.line),
                "there is no `LoadBalancerInfo:` (required: `ContainerName` and `ContainerPort` of the container that \
                 serves the traffic). Add it."
                    .into(),
            ),
        }
        if let Some(v) = get(props, "PlatformVersion")
            && !matches!(v.value, Value::Str(_) | Value::Float(_))
        {
            self.at(
                Some(v.line),
                format!("`PlatformVersion: {}` is not a Fargate platform version (`LATEST`, `1.4.0`).", v.shown()),
            );
        }
        if let Some(net) = get(props, "NetworkConfiguration") {
            self.network(net);
        }
    }

    fn network(&mut self, net: &Node) {
        let Some(vpc) = get(net, "AwsvpcConfiguration").filter(|v| matches!(v.value, Value::Map(_))) else {
            return self.at(
                Some(net.line),
                "`NetworkConfiguration` must hold `AwsvpcConfiguration:` with `Subnets`, `SecurityGroups` and \
                 `AssignPublicIp`. Add it, or drop NetworkConfiguration."
                    .into(),
            );
        };
        let subnets = get(vpc, "Subnets").map(|s| s.line);
        if subnets.is_none() || self.string_list(vpc, "Subnets", MAX_SUBNETS) == Some(0) {
            self.at(
                Some(subnets.unwrap_or(vpc.line)),
                "`AwsvpcConfiguration` must list at least one subnet under `Subnets:`. Add the service's subnets.".into(),
            );
        }
        self.string_list(vpc, "SecurityGroups", MAX_SECURITY_GROUPS);
        if let Some(p) = get(vpc, "AssignPublicIp")
            && !matches!(text(p).as_deref(), Some("ENABLED" | "DISABLED"))
        {
            self.at(Some(p.line), format!("`AssignPublicIp: {}` must be ENABLED or DISABLED.", p.shown()));
        }
    }

    /// The length of a list of strings under `key`, after saying what is
    /// wrong with it.
    fn string_list(&mut self, parent: &Node, key: &str, max: usize) -> Option<usize> {
        let list = get(parent, key)?;
        let Value::Seq(items) = &list.value else {
            self.at(Some(list.line), format!("`{key}` must be a list (`- id` per line, or `[id, id]`)."));
            return None;
        };
        if let Some(bad) = items.iter().find(|i| !matches!(i.value, Value::Str(_))) {
            self.at(Some(bad.line), format!("`{}` in `{key}` is not an id: write each as a string.", bad.shown()));
        }
        if items.len() > max {
            self.at(Some(list.line), format!("`{key}` lists {} ids; ECS takes at most {max}.", items.len()));
        }
        Some(items.len())
    }

    fn hooks(&mut self, top: &Node, kind: Kind) {
        let Some(hooks) = get(top, "Hooks") else { return };
        let events: &[&str] = match kind {
            Kind::Lambda => &LAMBDA_HOOK_EVENTS,
            Kind::Ecs => &ECS_HOOK_EVENTS,
        };
        let Value::Seq(items) = &hooks.value else {
            return self.at(
                Some(hooks.line),
                format!("`Hooks` must be a list of `- EVENT: function` entries (events: {}).", events.join(", ")),
            );
        };
        for item in items {
            let Value::Map(entries) = &item.value else {
                self.at(Some(item.line), "each hook is `- EVENT: function-name`.".into());
                continue;
            };
            for (event, function) in entries {
                let name = text(event).unwrap_or_default();
                if !events.contains(&name.as_str()) {
                    let why = if crate::appspec::HOOKS.contains(&name.as_str()) || name == "AfterAllowTestTraffic" {
                        format!("is not a lifecycle event of {kind} deployments")
                    } else {
                        "is not a lifecycle event".into()
                    };
                    self.at(
                        Some(event.line),
                        format!("`{name}` {why}; a {kind} appspec hooks only {}. Rename or remove it.", events.join(", ")),
                    );
                }
                match text(function) {
                    Some(f) if hook_function(&f) => {}
                    _ => self.at(
                        Some(function.line),
                        format!(
                            "`{name}: {}` does not name a Lambda function: give the hook function's name (letters, \
                             digits, `-`, `_`, up to 64) or its ARN.",
                            function.shown()
                        ),
                    ),
                }
            }
        }
    }
}

/// The platform a resource deploys to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Lambda,
    Ecs,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Lambda => "Lambda",
            Kind::Ecs => "ECS",
        })
    }
}

/// A document read from pretty-printed JSON: its lines are not the file's.
fn strip_lines(mut node: Node) -> Node {
    node.line = 0;
    node.value = match node.value {
        Value::Seq(items) => Value::Seq(items.into_iter().map(strip_lines).collect()),
        Value::Map(entries) => Value::Map(entries.into_iter().map(|(k, v)| (strip_lines(k), strip_lines(v))).collect()),
        v => v,
    };
    node
}

fn name_chars(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A 12-digit AWS account id.
fn account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A Lambda alias name: 1-128 of `[A-Za-z0-9_-]`, not all digits.
fn alias_name(s: &str) -> bool {
    name_chars(s, 128) && !s.bytes().all(|b| b.is_ascii_digit())
}

/// A hook function: a name (with an optional `:version` or `:alias`) or a
/// function ARN.
fn hook_function(s: &str) -> bool {
    let name = match s.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(6, ':').collect();
            let [partition, "lambda", region, account, "function", name] = parts.as_slice() else { return false };
            if !(partition.starts_with("aws") && !region.is_empty() && account_id(account)) {
                return false;
            }
            *name
        }
        None => s,
    };
    let (base, qualifier) = name.split_once(':').unwrap_or((name, ""));
    name_chars(base, 64) && (qualifier.is_empty() || qualifier == "$LATEST" || name_chars(qualifier, 128))
}

/// `arn:PARTITION:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION`.
fn task_definition_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ["arn", partition, "ecs", region, account, resource] = parts.as_slice() else { return false };
    let Some((family, revision)) = resource.strip_prefix("task-definition/").and_then(|r| r.rsplit_once(':')) else {
        return false;
    };
    partition.starts_with("aws")
        && !region.is_empty()
        && account_id(account)
        && name_chars(family, 255)
        && revision.parse::<u32>().is_ok_and(|r| r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAMBDA: &str = "version: 0.0\nResources:\n  - checkout:\n      Type: AWS::Lambda::Function\n      Properties:\n        \
                          Name: checkout\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\nHooks:\n  \
                          - BeforeAllowTraffic: checkout-pre\n  - AfterAllowTraffic: arn:aws:lambda:eu-west-1:123456789012:function:post\n";

    const ECS: &str = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        \
                       TaskDefinition: arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7\n        LoadBalancerInfo:\n          \
                       ContainerName: web\n          ContainerPort: 8080\n        PlatformVersion: LATEST\n        \
                       NetworkConfiguration:\n          AwsvpcConfiguration:\n            Subnets: [subnet-1, subnet-2]\n            \
                       SecurityGroups: [sg-1]\n            AssignPublicIp: DISABLED\nHooks:\n  - AfterAllowTestTraffic: smoke\n";

    fn lines(text: &str) -> Vec<(Option<usize>, String)> {
        check(text).into_iter().map(|p| (p.line, p.message)).collect()
    }

    #[test]
    fn a_complete_lambda_and_ecs_appspec_pass_in_yaml_and_json() {
        assert_eq!(lines(LAMBDA), vec![]);
        assert_eq!(lines(ECS), vec![]);
        for yaml in [LAMBDA, ECS] {
            let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
            assert_eq!(lines(&serde_json::to_string_pretty(&v).unwrap()), vec![]);
            assert_eq!(lines(&serde_json::to_string(&v).unwrap().replace(',', ",\t")), vec![], "tabs between JSON tokens");
        }
    }

    #[test]
    fn latest_and_equal_versions_are_refused_on_their_lines() {
        let latest = lines(&LAMBDA.replace("TargetVersion: 2", "TargetVersion: $LATEST"));
        assert_eq!(latest.len(), 1, "{latest:?}");
        assert_eq!(latest[0].0, Some(9));
        assert!(latest[0].1.contains("$LATEST") && latest[0].1.contains("publish-version"), "{latest:?}");
        let same = lines(&LAMBDA.replace("TargetVersion: 2", "TargetVersion: \"1\""));
        assert_eq!(same.len(), 1, "{same:?}");
        assert!(same[0].1.contains("both 1"), "{same:?}");
        let zero = lines(&LAMBDA.replace("CurrentVersion: 1", "CurrentVersion: 0"));
        assert!(zero[0].1.contains("positive integer"), "{zero:?}");
    }

    #[test]
    fn an_ec2_hook_in_a_lambda_appspec_and_a_bad_hook_function_are_named() {
        let bad = lines(&LAMBDA.replace("BeforeAllowTraffic: checkout-pre", "BeforeInstall: \"no spaces allowed\""));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].1.contains("`BeforeInstall` is not a lifecycle event of Lambda deployments"), "{bad:?}");
        assert!(bad[1].1.contains("does not name a Lambda function"), "{bad:?}");
        assert_eq!((bad[0].0, bad[1].0), (Some(11), Some(11)));
    }

    #[test]
    fn an_ecs_appspec_with_every_property_wrong_lists_each_problem() {
        let text = ECS
            .replace("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7", "web:7")
            .replace("ContainerPort: 8080", "ContainerPort: 70000")
            .replace("AssignPublicIp: DISABLED", "AssignPublicIp: yes please")
            .replace("Subnets: [subnet-1, subnet-2]", "Subnets: []")
            .replace("AfterAllowTestTraffic", "ApplicationStop")
            .replace("version: 0.0", "version: 1");
        let found = lines(&text);
        let lines_of: Vec<_> = found.iter().map(|(l, _)| l.unwrap_or(0)).collect();
        assert_eq!(lines_of, vec![1, 6, 9, 13, 15, 17], "{found:?}");
    }

    #[test]
    fn two_resources_or_an_unknown_type_are_refused() {
        let two = LAMBDA.replace("Resources:\n", "Resources:\n  - other:\n      Type: AWS::Lambda::Function\n");
        assert!(lines(&two)[0].1.contains("lists 2 resources"));
        let ty = lines(&LAMBDA.replace("AWS::Lambda::Function", "AWS::Lambda::Alias"));
        assert_eq!(ty[0].0, Some(4));
        assert!(ty[0].1.contains("AWS::ECS::Service"), "{ty:?}");
    }

    #[test]
    fn lowercase_keys_of_aws_examples_are_read() {
        let lower = "version: 0.0\nresources:\n  - f:\n      type: AWS::Lambda::Function\n      properties:\n        name: f\n        \
                     alias: live\n        currentversion: \"1\"\n        targetversion: \"2\"\n";
        assert_eq!(lines(lower), vec![]);
        assert!(describes_resources(lower));
        assert!(!describes_resources("version: 0.0\nos: linux\n"));
    }

    #[test]
    fn the_appspec_ferry_writes_for_a_lambda_release_passes() {
        let function = crate::config::LambdaFunction {
            name: "checkout".into(),
            alias: "live".into(),
            hooks: [("BeforeAllowTraffic".to_string(), "checkout-pre".to_string())].into(),
        };
        let v = super::super::lambda::Versions { current: "4".into(), target: "5".into() };
        assert_eq!(lines(&super::super::lambda::write(&function, &v)), vec![]);
    }
}
