//! `task_definition = "taskdef.json"`: a task definition kept in the repo,
//! in the JSON `aws ecs register-task-definition --cli-input-json` takes (the
//! `taskDefinition` of `describe-task-definition` works too: its read-only
//! keys are ignored). ferry registers the keys it knows; any other key is
//! refused by name rather than silently dropped.

use std::path::Path;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, PortMapping, Secret,
    TaskDefinition, TransportProtocol,
};
use serde_json::Value;

use super::EcsError;

/// Keys `describe-task-definition` adds that registration does not take.
const READ_ONLY: [&str; 9] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "tags",
];
const TASK_KEYS: [&str; 7] =
    ["family", "taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory"];
const CONTAINER_KEYS: [&str; 14] = [
    "name",
    "image",
    "cpu",
    "memory",
    "memoryReservation",
    "essential",
    "portMappings",
    "environment",
    "secrets",
    "command",
    "entryPoint",
    "workingDirectory",
    "user",
    "logConfiguration",
];

/// Reads the task definition file at `path`.
pub fn read(path: &Path) -> Result<TaskDefinition, EcsError> {
    let fail = |reason: String| EcsError::TaskDefFile { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    parse(&doc).map_err(fail)
}

fn parse(doc: &Value) -> Result<TaskDefinition, String> {
    let obj = doc.as_object().ok_or("the file must hold one JSON object")?;
    unknown(&TASK_KEYS, obj.keys(), "")?;
    let family = text(doc, "family").ok_or("`family` is missing")?;
    let containers =
        doc["containerDefinitions"].as_array().filter(|a| !a.is_empty()).ok_or("`containerDefinitions` is missing")?;
    let mut defs = Vec::new();
    for c in containers {
        let name = text(c, "name").ok_or("a container definition has no `name`")?;
        let map = c.as_object().ok_or("a container definition is not an object")?;
        unknown(&CONTAINER_KEYS, map.keys(), &format!(" (container {name})"))?;
        defs.push(container(c, &name)?);
    }
    let compat = doc["requiresCompatibilities"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).map(Compatibility::from).collect::<Vec<_>>());
    Ok(TaskDefinition::builder()
        .family(family)
        .set_task_role_arn(text(doc, "taskRoleArn"))
        .set_execution_role_arn(text(doc, "executionRoleArn"))
        .set_network_mode(text(doc, "networkMode").map(|m| NetworkMode::from(m.as_str())))
        .set_requires_compatibilities(compat)
        .set_cpu(text(doc, "cpu"))
        .set_memory(text(doc, "memory"))
        .set_container_definitions(Some(defs))
        .build())
}

/// Refuses the first key of `keys` that is neither `known` nor read-only.
fn unknown<'a>(known: &[&str], mut keys: impl Iterator<Item = &'a String>, at: &str) -> Result<(), String> {
    let known = |k: &str| known.contains(&k) || READ_ONLY.contains(&k) || k == "containerDefinitions";
    match keys.find(|k| !known(k)) {
        Some(k) => Err(format!(
            "ferry does not register `{k}`{at} from a task definition file: remove it, or register the task definition \
             yourself and let ferry copy the service's (leave task_definition unset)"
        )),
        None => Ok(()),
    }
}

fn container(c: &Value, name: &str) -> Result<ContainerDefinition, String> {
    let int = |k: &str| c[k].as_i64().and_then(|n| i32::try_from(n).ok());
    let strings = |k: &str| c[k].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect());
    let pairs = |k: &str| {
        c[k].as_array().map(|a| {
            a.iter().map(|p| KeyValuePair::builder().set_name(text(p, "name")).set_value(text(p, "value")).build()).collect()
        })
    };
    let ports = c["portMappings"].as_array().map(|a| {
        a.iter()
            .map(|p| {
                PortMapping::builder()
                    .set_container_port(p["containerPort"].as_i64().and_then(|n| i32::try_from(n).ok()))
                    .set_host_port(p["hostPort"].as_i64().and_then(|n| i32::try_from(n).ok()))
                    .set_protocol(text(p, "protocol").map(|s| TransportProtocol::from(s.as_str())))
                    .set_name(text(p, "name"))
                    .build()
            })
            .collect()
    });
    let secrets = match c["secrets"].as_array() {
        None => None,
        Some(a) => Some(
            a.iter()
                .map(|s| {
                    Secret::builder()
                        .set_name(text(s, "name"))
                        .set_value_from(text(s, "valueFrom"))
                        .build()
                        .map_err(|e| format!("container {name}: a secret needs name and valueFrom ({e})"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let log = match c.get("logConfiguration") {
        None => None,
        Some(l) => {
            let options = l["options"]
                .as_object()
                .map(|o| o.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect());
            let driver = text(l, "logDriver").ok_or(format!("container {name}: logConfiguration has no logDriver"))?;
            Some(
                LogConfiguration::builder()
                    .log_driver(LogDriver::from(driver.as_str()))
                    .set_options(options)
                    .build()
                    .map_err(|e| format!("container {name}: {e}"))?,
            )
        }
    };
    Ok(ContainerDefinition::builder()
        .name(name)
        .set_image(text(c, "image"))
        .set_cpu(int("cpu"))
        .set_memory(int("memory"))
        .set_memory_reservation(int("memoryReservation"))
        .set_essential(c["essential"].as_bool())
        .set_port_mappings(ports)
        .set_environment(pairs("environment"))
        .set_secrets(secrets)
        .set_command(strings("command"))
        .set_entry_point(strings("entryPoint"))
        .set_working_directory(text(c, "workingDirectory"))
        .set_user(text(c, "user"))
        .set_log_configuration(log)
        .build())
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_describe_output_reads_back_with_its_containers_and_roles() {
        let doc = serde_json::json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "revision": 3, "status": "ACTIVE",
            "family": "web", "executionRoleArn": "arn:aws:iam::1:role/exec", "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "nginx:1", "essential": true,
                "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
                "environment": [{"name": "MODE", "value": "prod"}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "web"}}}]
        });
        let d = parse(&doc).unwrap();
        assert_eq!((d.family(), d.execution_role_arn(), d.cpu()), (Some("web"), Some("arn:aws:iam::1:role/exec"), Some("256")));
        let c = &d.container_definitions()[0];
        assert_eq!((c.name(), c.image(), c.port_mappings()[0].container_port()), (Some("web"), Some("nginx:1"), Some(80)));
        assert_eq!(c.environment()[0].value(), Some("prod"));
    }

    #[test]
    fn a_key_ferry_does_not_register_is_refused_by_name() {
        let doc = serde_json::json!({"family": "web", "volumes": [], "containerDefinitions": [{"name": "web"}]});
        assert!(parse(&doc).unwrap_err().contains("`volumes`"));
        let doc = serde_json::json!({"family": "web", "containerDefinitions": [{"name": "web", "ulimits": []}]});
        assert!(parse(&doc).unwrap_err().contains("`ulimits` (container web)"));
        assert!(parse(&serde_json::json!({"containerDefinitions": []})).unwrap_err().contains("family"));
    }
}
