//! A task definition file (`taskdef.json`, as `aws ecs describe-task-definition` prints one or
//! as people write them) read strictly into `RegisterTaskDefinition`: every member Baton maps is
//! sent, a member it does not map is refused by name (nothing is dropped quietly), and the
//! read-only members a description carries (`taskDefinitionArn`, `revision`, `status`...) are
//! left out, as ECS would refuse them.

use std::collections::BTreeMap;

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types as ecs;
use serde::Deserialize;

/// The members of a description that registering does not take.
const READ_ONLY: [&str; 9] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "compatibilities",
    "requiresAttributes",
    "enableFaultInjection",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TaskDef {
    family: String,
    container_definitions: Vec<Container>,
    task_role_arn: Option<String>,
    execution_role_arn: Option<String>,
    network_mode: Option<String>,
    #[serde(default)]
    requires_compatibilities: Vec<String>,
    cpu: Option<String>,
    memory: Option<String>,
    #[serde(default)]
    volumes: Vec<Volume>,
    #[serde(default)]
    tags: Vec<Tag>,
    runtime_platform: Option<RuntimePlatform>,
    ephemeral_storage: Option<EphemeralStorage>,
    pid_mode: Option<String>,
    ipc_mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Container {
    name: String,
    image: String,
    cpu: Option<i32>,
    memory: Option<i32>,
    memory_reservation: Option<i32>,
    essential: Option<bool>,
    #[serde(default)]
    port_mappings: Vec<PortMapping>,
    #[serde(default)]
    environment: Vec<NameValue>,
    #[serde(default)]
    secrets: Vec<Secret>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    entry_point: Vec<String>,
    working_directory: Option<String>,
    log_configuration: Option<LogConfiguration>,
    health_check: Option<HealthCheck>,
    #[serde(default)]
    depends_on: Vec<DependsOn>,
    #[serde(default)]
    mount_points: Vec<MountPoint>,
    user: Option<String>,
    readonly_root_filesystem: Option<bool>,
    stop_timeout: Option<i32>,
    start_timeout: Option<i32>,
    #[serde(default)]
    docker_labels: BTreeMap<String, String>,
    #[serde(default)]
    ulimits: Vec<Ulimit>,
    #[serde(default)]
    volumes_from: Vec<VolumeFrom>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PortMapping {
    container_port: Option<i32>,
    host_port: Option<i32>,
    protocol: Option<String>,
    name: Option<String>,
    app_protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Secret {
    name: String,
    value_from: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogConfiguration {
    log_driver: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default)]
    secret_options: Vec<Secret>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HealthCheck {
    command: Vec<String>,
    interval: Option<i32>,
    timeout: Option<i32>,
    retries: Option<i32>,
    start_period: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DependsOn {
    container_name: String,
    condition: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MountPoint {
    source_volume: Option<String>,
    container_path: Option<String>,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VolumeFrom {
    source_container: Option<String>,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Ulimit {
    name: String,
    soft_limit: i32,
    hard_limit: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Volume {
    name: String,
    host: Option<Host>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Host {
    source_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuntimePlatform {
    cpu_architecture: Option<String>,
    operating_system_family: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EphemeralStorage {
    size_in_gi_b: i32,
}

/// `text` (a task definition file) as a `RegisterTaskDefinition` call on `call`; or why not,
/// in one sentence naming the member at fault.
pub(crate) fn register_call(
    text: &str,
    mut call: RegisterTaskDefinitionFluentBuilder,
) -> Result<RegisterTaskDefinitionFluentBuilder, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("it is not JSON: {e}"))?;
    // A description's own `taskDefinition` wrapper, and its read-only members, are left out.
    if let Some(inner) = value.get("taskDefinition").cloned() {
        value = inner;
    }
    if let Some(map) = value.as_object_mut() {
        for key in READ_ONLY {
            map.remove(key);
        }
    }
    let t: TaskDef = serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        format!("{at}: {}", e.inner())
            .replace("unknown field", "Baton does not register task definitions with the member")
    })?;
    call = call
        .family(t.family)
        .set_task_role_arn(t.task_role_arn)
        .set_execution_role_arn(t.execution_role_arn)
        .set_network_mode(t.network_mode.map(|m| ecs::NetworkMode::from(m.as_str())))
        .set_requires_compatibilities(Some(
            t.requires_compatibilities
                .iter()
                .map(|c| ecs::Compatibility::from(c.as_str()))
                .collect(),
        ))
        .set_cpu(t.cpu)
        .set_memory(t.memory)
        .set_pid_mode(t.pid_mode.map(|m| ecs::PidMode::from(m.as_str())))
        .set_ipc_mode(t.ipc_mode.map(|m| ecs::IpcMode::from(m.as_str())));
    for v in t.volumes {
        let host = v
            .host
            .map(|h| ecs::HostVolumeProperties::builder().set_source_path(h.source_path).build());
        call = call.volumes(ecs::Volume::builder().name(v.name).set_host(host).build());
    }
    for tag in t.tags {
        call = call.tags(ecs::Tag::builder().key(tag.key).value(tag.value).build());
    }
    if let Some(p) = t.runtime_platform {
        call = call.runtime_platform(
            ecs::RuntimePlatform::builder()
                .set_cpu_architecture(
                    p.cpu_architecture.map(|a| ecs::CpuArchitecture::from(a.as_str())),
                )
                .set_operating_system_family(
                    p.operating_system_family.map(|f| ecs::OsFamily::from(f.as_str())),
                )
                .build(),
        );
    }
    if let Some(s) = t.ephemeral_storage {
        call = call.ephemeral_storage(
            ecs::EphemeralStorage::builder().size_in_gib(s.size_in_gi_b).build(),
        );
    }
    for c in t.container_definitions {
        call = call.container_definitions(container(c)?);
    }
    Ok(call)
}

fn container(c: Container) -> Result<ecs::ContainerDefinition, String> {
    let name = c.name.clone();
    let at = |what: &str, e: &dyn std::fmt::Display| format!("container {name}, {what}: {e}");
    let mut d = ecs::ContainerDefinition::builder()
        .name(c.name)
        .image(c.image)
        .set_cpu(c.cpu)
        .set_memory(c.memory)
        .set_memory_reservation(c.memory_reservation)
        .set_essential(c.essential)
        .set_working_directory(c.working_directory)
        .set_user(c.user)
        .set_readonly_root_filesystem(c.readonly_root_filesystem)
        .set_stop_timeout(c.stop_timeout)
        .set_start_timeout(c.start_timeout)
        .set_command((!c.command.is_empty()).then_some(c.command))
        .set_entry_point((!c.entry_point.is_empty()).then_some(c.entry_point))
        .set_docker_labels(
            (!c.docker_labels.is_empty()).then(|| c.docker_labels.into_iter().collect()),
        );
    for p in c.port_mappings {
        d = d.port_mappings(
            ecs::PortMapping::builder()
                .set_container_port(p.container_port)
                .set_host_port(p.host_port)
                .set_protocol(p.protocol.map(|x| ecs::TransportProtocol::from(x.as_str())))
                .set_name(p.name)
                .set_app_protocol(
                    p.app_protocol.map(|x| ecs::ApplicationProtocol::from(x.as_str())),
                )
                .build(),
        );
    }
    for e in c.environment {
        d = d.environment(ecs::KeyValuePair::builder().name(e.name).value(e.value).build());
    }
    for s in c.secrets {
        let secret = ecs::Secret::builder().name(s.name).value_from(s.value_from).build();
        d = d.secrets(secret.map_err(|e| at("secrets", &e))?);
    }
    if let Some(l) = c.log_configuration {
        let mut log = ecs::LogConfiguration::builder()
            .log_driver(ecs::LogDriver::from(l.log_driver.as_str()))
            .set_options((!l.options.is_empty()).then(|| l.options.into_iter().collect()));
        for s in l.secret_options {
            let secret = ecs::Secret::builder().name(s.name).value_from(s.value_from).build();
            log = log.secret_options(secret.map_err(|e| at("logConfiguration", &e))?);
        }
        d = d.log_configuration(log.build().map_err(|e| at("logConfiguration", &e))?);
    }
    if let Some(h) = c.health_check {
        let check = ecs::HealthCheck::builder()
            .set_command(Some(h.command))
            .set_interval(h.interval)
            .set_timeout(h.timeout)
            .set_retries(h.retries)
            .set_start_period(h.start_period)
            .build();
        d = d.health_check(check.map_err(|e| at("healthCheck", &e))?);
    }
    for dep in c.depends_on {
        let condition = ecs::ContainerCondition::from(dep.condition.as_str());
        let dep = ecs::ContainerDependency::builder()
            .container_name(dep.container_name)
            .condition(condition)
            .build();
        d = d.depends_on(dep.map_err(|e| at("dependsOn", &e))?);
    }
    for m in c.mount_points {
        d = d.mount_points(
            ecs::MountPoint::builder()
                .set_source_volume(m.source_volume)
                .set_container_path(m.container_path)
                .set_read_only(m.read_only)
                .build(),
        );
    }
    for v in c.volumes_from {
        d = d.volumes_from(
            ecs::VolumeFrom::builder()
                .set_source_container(v.source_container)
                .set_read_only(v.read_only)
                .build(),
        );
    }
    for u in c.ulimits {
        let limit = ecs::Ulimit::builder()
            .name(ecs::UlimitName::from(u.name.as_str()))
            .soft_limit(u.soft_limit)
            .hard_limit(u.hard_limit)
            .build();
        d = d.ulimits(limit.map_err(|e| at("ulimits", &e))?);
    }
    Ok(d.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> RegisterTaskDefinitionFluentBuilder {
        let config = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .build();
        aws_sdk_ecs::Client::from_conf(config).register_task_definition()
    }

    #[test]
    fn a_described_task_definition_registers_without_its_read_only_members() {
        let text = r#"{"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "family": "web", "revision": 3, "status": "ACTIVE", "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "<IMAGE1_NAME>", "essential": true,
              "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
              "environment": [{"name": "MODE", "value": "prod"}],
              "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/web"}}}]}}"#;
        let input = register_call(text, call()).unwrap().as_input().clone().build().unwrap();
        assert_eq!(input.family(), Some("web"));
        let c = &input.container_definitions()[0];
        assert_eq!(c.image(), Some("<IMAGE1_NAME>"));
        assert_eq!(c.port_mappings()[0].container_port(), Some(80));
        assert_eq!(c.environment()[0].value(), Some("prod"));
        assert_eq!(input.requires_compatibilities(), &[ecs::Compatibility::Fargate]);
    }

    #[test]
    fn a_member_baton_does_not_register_is_refused_by_name() {
        let text = r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "x",
            "linuxParameters": {"initProcessEnabled": true}}]}"#;
        let err = register_call(text, call()).err().unwrap();
        assert!(
            err.contains("containerDefinitions[0]") && err.contains("linuxParameters"),
            "{err}"
        );
    }
}
