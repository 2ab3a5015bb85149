//! `ferry check` on the appspec of an ECS or Lambda deployment, as a user
//! writes it (`appspec.yaml`, `appspec.json`): each problem on its line with
//! its fix, exit 1; a valid one passes with exit 0; no AWS call either way.
//!
//! Its rules are held to the CodeDeploy emulator's parsers
//! (`codedeploy_emulator::ecs::parse_appspec`, `lambda::parse_appspec`): the
//! same appspecs through both, and a failure wherever they disagree on
//! accept or refuse. Where ferry follows AWS's AppSpec reference further
//! than the emulator does, the case is listed apart ([`stricter`],
//! [`looser`]) with the rule it rests on, and the test holds both sides to
//! it: an emulator taught the rule makes it fail, so the case moves to
//! [`agreed`].

mod common;

use common::{Tripwire, run};
use ferry::appspec::resources;

#[derive(Clone, Copy, Debug)]
enum Platform {
    Lambda,
    Ecs,
}

const LAMBDA: &str = "version: 0.0
Resources:
  - checkout:
      Type: AWS::Lambda::Function
      Properties:
        Name: checkout
        Alias: live
        CurrentVersion: 1
        TargetVersion: 2
Hooks:
  - BeforeAllowTraffic: checkout-pre
  - AfterAllowTraffic: arn:aws:lambda:eu-west-1:123456789012:function:checkout-post
";

const ECS: &str = "version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7
        LoadBalancerInfo:
          ContainerName: web
          ContainerPort: 8080
        PlatformVersion: LATEST
        NetworkConfiguration:
          AwsvpcConfiguration:
            Subnets: [subnet-1, subnet-2]
            SecurityGroups: [sg-1]
            AssignPublicIp: DISABLED
Hooks:
  - BeforeInstall: web-before
  - AfterAllowTestTraffic: web-smoke
";

/// A case: its name, platform, text, and whether CodeDeploy accepts it.
type Case = (&'static str, Platform, String, bool);

fn lambda(from: &str, to: &str) -> String {
    assert!(LAMBDA.contains(from), "{from}");
    LAMBDA.replace(from, to)
}

fn ecs(from: &str, to: &str) -> String {
    assert!(ECS.contains(from), "{from}");
    ECS.replace(from, to)
}

fn json(yaml: &str) -> String {
    let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
    serde_json::to_string_pretty(&v).unwrap()
}

/// Cases both must judge the same.
fn agreed() -> Vec<Case> {
    use Platform::*;
    vec![
        ("lambda", Lambda, LAMBDA.into(), true),
        ("lambda as json", Lambda, json(LAMBDA), true),
        ("lambda without hooks", Lambda, LAMBDA.split("Hooks:").next().unwrap().into(), true),
        ("lambda versions as strings", Lambda, lambda("CurrentVersion: 1", "CurrentVersion: \"1\""), true),
        ("ecs", Ecs, ECS.into(), true),
        ("ecs as json", Ecs, json(ECS), true),
        ("ecs without network or hooks", Ecs, ECS.split("        PlatformVersion").next().unwrap().into(), true),
        ("two resources", Lambda, lambda("Resources:\n", "Resources:\n  - other:\n      Type: AWS::Lambda::Function\n"), false),
        ("no resources", Lambda, "version: 0.0\nResources: []\n".into(), false),
        ("an alias resource", Lambda, lambda("AWS::Lambda::Function", "AWS::Lambda::Alias"), false),
        ("an ecs type in a lambda", Lambda, lambda("AWS::Lambda::Function", "AWS::ECS::Service"), false),
        ("no name", Lambda, lambda("        Name: checkout\n", ""), false),
        ("no alias", Lambda, lambda("        Alias: live\n", ""), false),
        ("no current version", Lambda, lambda("        CurrentVersion: 1\n", ""), false),
        ("no target version", Lambda, lambda("        TargetVersion: 2\n", ""), false),
        ("an ec2 hook in lambda", Lambda, lambda("BeforeAllowTraffic", "BeforeInstall"), false),
        ("a test-traffic hook in lambda", Lambda, lambda("BeforeAllowTraffic", "AfterAllowTestTraffic"), false),
        ("hooks not a mapping", Lambda, lambda("  - BeforeAllowTraffic: checkout-pre", "  - BeforeAllowTraffic: [a, b]"), false),
        ("not yaml", Lambda, lambda("Alias: live", "Alias: [live"), false),
        (
            "no task definition",
            Ecs,
            ecs("        TaskDefinition: arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7\n", ""),
            false,
        ),
        (
            "no load balancer info",
            Ecs,
            ecs("        LoadBalancerInfo:\n          ContainerName: web\n          ContainerPort: 8080\n", ""),
            false,
        ),
        ("no container name", Ecs, ecs("          ContainerName: web\n", ""), false),
        ("no container port", Ecs, ecs("          ContainerPort: 8080\n", ""), false),
        ("port 0", Ecs, ecs("ContainerPort: 8080", "ContainerPort: 0"), false),
        ("port 65536", Ecs, ecs("ContainerPort: 8080", "ContainerPort: 65536"), false),
        ("port as words", Ecs, ecs("ContainerPort: 8080", "ContainerPort: http"), false),
        ("network without awsvpc", Ecs, ecs("          AwsvpcConfiguration:\n", "          Awsvpc:\n"), false),
        ("no subnets", Ecs, ecs("Subnets: [subnet-1, subnet-2]", "Subnets: []"), false),
        ("an ec2 hook in ecs", Ecs, ecs("BeforeInstall: web-before", "ApplicationStop: web-before"), false),
        ("a lambda type in ecs", Ecs, ecs("AWS::ECS::Service", "AWS::Lambda::Function"), false),
    ]
}

/// Refused by ferry, after AWS's reference; the emulator lets them through.
fn stricter() -> Vec<(&'static str, Platform, String, &'static str)> {
    use Platform::*;
    vec![
        (
            "target $LATEST",
            Lambda,
            lambda("TargetVersion: 2", "TargetVersion: $LATEST"),
            "TargetVersion: the value must be a valid positive integer",
        ),
        ("version 0", Lambda, lambda("CurrentVersion: 1", "CurrentVersion: 0"), "CurrentVersion: a positive integer"),
        (
            "the same versions",
            Lambda,
            lambda("TargetVersion: 2", "TargetVersion: 1"),
            "a deployment moves the alias to another version",
        ),
        ("appspec version 1", Lambda, lambda("version: 0.0", "version: 1"), "version: the only value is 0.0"),
        ("an alias of digits", Lambda, lambda("Alias: live", "Alias: \"12\""), "Lambda alias names are not all digits"),
        ("a hook with a space", Lambda, lambda("checkout-pre", "\"checkout pre\""), "a hook names a Lambda function"),
        (
            "a task definition by family",
            Ecs,
            ecs("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7", "web:7"),
            "TaskDefinition: specified with the ARN of the task definition",
        ),
        (
            "assign public ip yes",
            Ecs,
            ecs("AssignPublicIp: DISABLED", "AssignPublicIp: \"yes\""),
            "AssignPublicIp: ENABLED or DISABLED",
        ),
    ]
}

/// Accepted by ferry (AWS's own examples write them); the emulator refuses.
fn looser() -> Vec<(&'static str, Platform, String, &'static str)> {
    vec![(
        "lowercase keys",
        Platform::Lambda,
        "version: 0.0\nresources:\n  - f:\n      type: AWS::Lambda::Function\n      properties:\n        name: f\n        alias: live\n        currentversion: 1\n        targetversion: 2\n".into(),
        "AWS's Lambda example in \"AppSpec 'resources' section\" writes the keys in lowercase",
    )]
}

fn emulator_accepts(platform: Platform, text: &str) -> Result<(), String> {
    match platform {
        Platform::Lambda => codedeploy_emulator::lambda::parse_appspec(text).map(drop),
        Platform::Ecs => codedeploy_emulator::ecs::parse_appspec(text).map(drop),
    }
}

fn ferry_problems(text: &str) -> Vec<String> {
    resources::check(text).iter().map(|p| p.to_string()).collect()
}

#[test]
fn ferry_check_and_the_emulator_accept_and_refuse_the_same_appspecs() {
    let mut disagreements = Vec::new();
    for (name, platform, text, valid) in agreed() {
        let emulator = emulator_accepts(platform, &text);
        let ferry = ferry_problems(&text);
        if emulator.is_ok() != valid || ferry.is_empty() != valid {
            disagreements.push(format!("{name} (CodeDeploy accepts: {valid}): emulator {emulator:?}, ferry {ferry:?}"));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn where_ferry_follows_aws_further_than_the_emulator_the_rule_holds_on_both_sides() {
    for (name, platform, text, rule) in stricter() {
        assert!(!ferry_problems(&text).is_empty(), "ferry accepts {name}, against \"{rule}\"");
        assert!(
            emulator_accepts(platform, &text).is_ok(),
            "the emulator now refuses {name} (\"{rule}\"): move the case to agreed()"
        );
    }
    for (name, platform, text, rule) in looser() {
        assert_eq!(ferry_problems(&text), Vec::<String>::new(), "ferry refuses {name}, which AWS accepts: {rule}");
        assert!(emulator_accepts(platform, &text).is_err(), "the emulator now accepts {name}: move the case to agreed()");
    }
}

#[test]
fn every_refusal_names_its_line_and_a_fix() {
    for (name, _, text, valid) in agreed() {
        if valid {
            continue;
        }
        for p in resources::check(&text) {
            assert!(p.line.is_some() || p.message.contains("Add"), "{name}: {p}");
            assert!(p.message.ends_with('.') || p.message.ends_with(')'), "{name}: a sentence: {p}");
        }
    }
}

#[test]
fn a_lambda_appspec_yaml_is_checked_with_each_problem_on_its_line() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("appspec.yaml");
    std::fs::write(&file, lambda("TargetVersion: 2", "TargetVersion: $LATEST").replace("BeforeAllowTraffic", "BeforeInstall"))
        .unwrap();
    for target in [file.clone(), dir.path().to_path_buf()] {
        let out = run(wire.command(dir.path()).arg("check").arg(&target));
        assert_eq!(out.code, 1, "{}", out.all());
        let shown = file.display();
        assert!(out.stderr.contains(&format!("{shown}:9: `TargetVersion: $LATEST` is refused")), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{shown}:11: `BeforeInstall` is not a lifecycle event of Lambda")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("2 problem(s)"), "{}", out.stderr);
    }
    assert!(!wire.tripped());
}

#[test]
fn a_valid_ecs_appspec_json_in_a_directory_passes() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let ecs = serde_json::json!({
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
            "TaskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7",
            "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080}}}}],
        "Hooks": [{"AfterAllowTestTraffic": "web-smoke"}]
    });
    std::fs::write(dir.path().join("appspec.json"), serde_json::to_string_pretty(&ecs).unwrap()).unwrap();
    let out = run(wire.command(dir.path()).arg("check").arg(dir.path()));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.all().contains("appspec.json: no problems found"), "{}", out.all());
    assert!(!wire.tripped());
}

#[test]
fn an_appspec_yml_naming_resources_is_checked_as_an_ecs_or_lambda_appspec() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("appspec.yml"), ecs("ContainerPort: 8080", "ContainerPort: 0")).unwrap();
    let out = run(wire.command(dir.path()).arg("check").arg(dir.path()));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("appspec.yml:9: `ContainerPort: 0` is not a port"), "{}", out.stderr);
    assert!(!out.stderr.contains("os:"), "not read as an EC2 appspec:\n{}", out.stderr);
    assert!(!wire.tripped());
}
