//! The appspec of an ECS deployment, which ferry writes itself: one
//! `AWS::ECS::Service` resource (the task definition registered for the
//! release, the container and port the load balancer sends traffic to, the
//! service's platform version and awsvpc network) and the environment's
//! hook functions; and reading its task definition back.

use aws_sdk_ecs::types::NetworkConfiguration;

/// What an ECS appspec names.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    /// The task definition ARN the replacement task set runs.
    pub task_definition: &'a str,
    /// The container the load balancer sends traffic to.
    pub container: &'a str,
    /// Its port.
    pub container_port: u16,
    /// Fargate platform version, if the service names one.
    pub platform_version: Option<&'a str>,
    /// The service's awsvpc configuration, if any.
    pub network: Option<&'a NetworkConfiguration>,
}

/// The appspec (YAML) for `spec` with `hooks` (event → function). Every
/// scalar is a JSON string (a valid YAML double-quoted scalar), so no name
/// can break it.
pub fn write(spec: &Spec<'_>, hooks: &std::collections::BTreeMap<String, String>) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut text = format!(
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        \
         TaskDefinition: {}\n        LoadBalancerInfo:\n          ContainerName: {}\n          ContainerPort: {}\n",
        q(spec.task_definition),
        q(spec.container),
        spec.container_port
    );
    if let Some(v) = spec.platform_version {
        text.push_str(&format!("        PlatformVersion: {}\n", q(v)));
    }
    if let Some(vpc) = spec.network.and_then(|n| n.awsvpc_configuration()) {
        text.push_str("        NetworkConfiguration:\n          AwsvpcConfiguration:\n");
        let list = |name: &str, items: &[String]| {
            let items: Vec<String> = items.iter().map(|s| q(s)).collect();
            format!("            {name}: [{}]\n", items.join(", "))
        };
        text.push_str(&list("Subnets", vpc.subnets()));
        if !vpc.security_groups().is_empty() {
            text.push_str(&list("SecurityGroups", vpc.security_groups()));
        }
        if let Some(ip) = vpc.assign_public_ip() {
            text.push_str(&format!("            AssignPublicIp: {}\n", q(ip.as_str())));
        }
    }
    if !hooks.is_empty() {
        text.push_str("Hooks:\n");
        // The order CodeDeploy runs them in, whatever the table's order.
        for event in crate::config::ECS_HOOK_EVENTS {
            if let Some(f) = hooks.get(event) {
                text.push_str(&format!("  - {event}: {}\n", q(f)));
            }
        }
    }
    text
}

/// The task definition an ECS appspec (YAML or JSON) names; `None` when it
/// is not one.
pub fn task_definition(text: &str) -> Option<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let resource = doc.get("Resources")?.as_sequence()?.first()?.as_mapping()?.values().next()?.clone();
    (resource.get("Type")?.as_str()? == "AWS::ECS::Service")
        .then(|| resource.get("Properties")?.get("TaskDefinition")?.as_str().map(String::from))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration};

    #[test]
    fn the_written_appspec_reads_back_with_its_network_and_hooks_in_run_order() {
        let vpc =
            AwsVpcConfiguration::builder().subnets("subnet-1").security_groups("sg-1").assign_public_ip(AssignPublicIp::Disabled);
        let network = NetworkConfiguration::builder().awsvpc_configuration(vpc.build().unwrap()).build();
        let arn = "arn:aws:ecs:us-east-1:1:task-definition/web:2";
        let spec = Spec {
            task_definition: arn,
            container: "web",
            container_port: 80,
            platform_version: Some("LATEST"),
            network: Some(&network),
        };
        let hooks = [("AfterAllowTraffic".to_string(), "post".to_string()), ("BeforeInstall".into(), "pre\"x".into())].into();
        let text = write(&spec, &hooks);
        assert_eq!(task_definition(&text).as_deref(), Some(arn));
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let props = &doc["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(props["LoadBalancerInfo"]["ContainerPort"].as_u64(), Some(80));
        assert_eq!(props["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"][0].as_str(), Some("subnet-1"));
        assert_eq!(props["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"].as_str(), Some("DISABLED"));
        let hooks = doc["Hooks"].as_sequence().unwrap();
        assert_eq!(hooks[0]["BeforeInstall"].as_str(), Some("pre\"x"), "first in run order, quoted");
        assert_eq!(hooks[1]["AfterAllowTraffic"].as_str(), Some("post"));
    }

    #[test]
    fn a_lambda_appspec_names_no_task_definition() {
        let lambda = "version: 0.0\nResources:\n  - f:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: f\n";
        assert_eq!(task_definition(lambda), None);
    }
}
