//! The CreateDeployment options teams pass to `aws deploy create-deployment`
//! or Pipeline: AWS Steps' `createDeployment`, as ferry.toml keys and flags
//! of the same names. Checked here, before any AWS call.

use serde::Deserialize;

/// `fileExistsBehavior`: what the agent does with a file at the destination
/// that the previous revision did not install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileExistsBehavior {
    /// Fail the Install event (CodeDeploy's default).
    Disallow,
    /// Replace the file with the revision's.
    Overwrite,
    /// Keep the file; the revision's copy is not installed.
    Retain,
}

impl FileExistsBehavior {
    /// CodeDeploy's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FileExistsBehavior::Disallow => "DISALLOW",
            FileExistsBehavior::Overwrite => "OVERWRITE",
            FileExistsBehavior::Retain => "RETAIN",
        }
    }

    /// Parses `disallow`, `OVERWRITE`, … (any case), as `--file-exists-behavior` takes it.
    pub fn parse(s: &str) -> Result<FileExistsBehavior, String> {
        match s.to_ascii_uppercase().as_str() {
            "DISALLOW" => Ok(FileExistsBehavior::Disallow),
            "OVERWRITE" => Ok(FileExistsBehavior::Overwrite),
            "RETAIN" => Ok(FileExistsBehavior::Retain),
            _ => Err(format!("`{s}` is not a file-exists behavior; use DISALLOW, OVERWRITE or RETAIN")),
        }
    }
}

/// How an EC2 tag filter matches (`EC2TagFilter.Type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagFilterType {
    /// Instances with the key, any value.
    KeyOnly,
    /// Instances with the value under any key.
    ValueOnly,
    /// Instances with the key and the value.
    #[default]
    KeyAndValue,
}

impl TagFilterType {
    /// CodeDeploy's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TagFilterType::KeyOnly => "KEY_ONLY",
            TagFilterType::ValueOnly => "VALUE_ONLY",
            TagFilterType::KeyAndValue => "KEY_AND_VALUE",
        }
    }
}

/// One EC2 tag filter of `target_instances`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagFilter {
    /// Tag key.
    pub key: Option<String>,
    /// Tag value.
    pub value: Option<String>,
    /// How to match (default `KEY_AND_VALUE`).
    #[serde(rename = "type", default)]
    pub kind: TagFilterType,
}

/// `targetInstances`: the instances of a blue/green deployment's replacement
/// environment (CodeDeploy does not narrow an in-place deployment by it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInstances {
    /// EC2 tag filters (an instance matching any of them is a target).
    #[serde(default)]
    pub tag_filters: Vec<TagFilter>,
    /// Auto Scaling groups whose instances are targets.
    #[serde(default)]
    pub auto_scaling_groups: Vec<String>,
}

impl TargetInstances {
    /// Parses one `--target-instances` value: `tag:KEY=VALUE`, `tag:KEY`
    /// (key only) or `asg:NAME`, added to `self`.
    pub fn add_flag(&mut self, value: &str) -> Result<(), String> {
        if let Some(name) = value.strip_prefix("asg:").filter(|n| !n.is_empty()) {
            self.auto_scaling_groups.push(name.to_string());
            return Ok(());
        }
        let Some(tag) = value.strip_prefix("tag:").filter(|t| !t.is_empty()) else {
            return Err(format!("`{value}` is not a target; use tag:KEY=VALUE, tag:KEY or asg:NAME"));
        };
        let filter = match tag.split_once('=') {
            Some((k, v)) => TagFilter { key: Some(k.to_string()), value: Some(v.to_string()), kind: TagFilterType::KeyAndValue },
            None => TagFilter { key: Some(tag.to_string()), value: None, kind: TagFilterType::KeyOnly },
        };
        self.tag_filters.push(filter);
        Ok(())
    }

    /// Checks each filter has what its type matches on.
    pub fn validate(&self) -> Result<(), String> {
        if self.tag_filters.is_empty() && self.auto_scaling_groups.is_empty() {
            return Err("names no tag filter and no Auto Scaling group, so it would target nothing".into());
        }
        for f in &self.tag_filters {
            let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
            let ok = match f.kind {
                TagFilterType::KeyOnly => has(&f.key),
                TagFilterType::ValueOnly => has(&f.value),
                TagFilterType::KeyAndValue => has(&f.key) && has(&f.value),
            };
            if !ok {
                return Err(format!(
                    "a {} tag filter needs {}",
                    f.kind.as_str(),
                    match f.kind {
                        TagFilterType::KeyOnly => "a key",
                        TagFilterType::ValueOnly => "a value",
                        TagFilterType::KeyAndValue => "a key and a value",
                    }
                ));
            }
        }
        if self.auto_scaling_groups.iter().any(|g| g.trim().is_empty()) {
            return Err("an Auto Scaling group name is empty".into());
        }
        Ok(())
    }
}

/// `overrideAlarmConfiguration`: this deployment's CloudWatch alarms instead
/// of the group's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmOverride {
    /// Whether the alarms stop the deployment at all.
    pub enabled: bool,
    /// Go on when CloudWatch cannot be polled for the alarms' state.
    #[serde(default)]
    pub ignore_poll_alarm_failure: bool,
    /// Alarm names.
    #[serde(default)]
    pub alarms: Vec<String>,
}

/// Everything CreateDeployment takes beyond the revision and the group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployOptions {
    /// `fileExistsBehavior`; CodeDeploy's default (DISALLOW) when unset.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// `ignoreApplicationStopFailures`.
    pub ignore_application_stop_failures: bool,
    /// `targetInstances`.
    pub target_instances: Option<TargetInstances>,
    /// `updateOutdatedInstancesOnly`.
    pub update_outdated_instances_only: bool,
    /// Text put before ferry's own description (which carries the build).
    pub description: Option<String>,
    /// `overrideAlarmConfiguration`.
    pub override_alarm_configuration: Option<AlarmOverride>,
}

/// What ferry writes into every description; a prefix may not contain it,
/// or the build read back from the description could be the prefix's.
pub const BUILD_MARKER: &str = "ferry build ";

impl DeployOptions {
    /// Checks the options; the error is (key, value, what is wrong).
    pub fn validate(&self) -> Result<(), (&'static str, String, String)> {
        if let Some(t) = &self.target_instances {
            t.validate().map_err(|e| ("target_instances", format!("{t:?}"), e))?;
        }
        if let Some(d) = &self.description {
            let bad = |why: String| Err(("description", d.escape_debug().to_string(), why));
            if d.contains(BUILD_MARKER) {
                return bad(format!("it may not contain `{BUILD_MARKER}`: ferry reads the build back from it"));
            }
            if d.chars().any(char::is_control) {
                return bad("it has a control character (a newline?); keep it to one line".into());
            }
        }
        if let Some(a) = &self.override_alarm_configuration
            && a.enabled
            && a.alarms.is_empty()
        {
            return Err((
                "override_alarm_configuration",
                "enabled = true, alarms = []".into(),
                "it is enabled but names no alarm; list `alarms`, or set `enabled = false` to deploy without alarms".into(),
            ));
        }
        Ok(())
    }

    /// The description CodeDeploy gets: the prefix, then ferry's own.
    pub fn describe(&self, ferry: &str) -> String {
        match self.description.as_deref().filter(|d| !d.trim().is_empty()) {
            Some(prefix) => format!("{} · {ferry}", prefix.trim()),
            None => ferry.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_flags_become_tag_filters_and_auto_scaling_groups() {
        let mut t = TargetInstances::default();
        t.add_flag("tag:Role=web").unwrap();
        t.add_flag("tag:Canary").unwrap();
        t.add_flag("asg:web-asg").unwrap();
        assert_eq!(t.tag_filters[0].value.as_deref(), Some("web"));
        assert_eq!(t.tag_filters[1].kind, TagFilterType::KeyOnly);
        assert_eq!(t.auto_scaling_groups, ["web-asg"]);
        assert!(t.validate().is_ok());
        assert!(t.add_flag("Role=web").unwrap_err().contains("tag:KEY=VALUE"));
    }

    #[test]
    fn a_filter_without_what_its_type_matches_on_is_refused() {
        let t = TargetInstances {
            tag_filters: vec![TagFilter { key: Some("Role".into()), value: None, kind: TagFilterType::KeyAndValue }],
            auto_scaling_groups: vec![],
        };
        assert!(t.validate().unwrap_err().contains("a key and a value"));
        assert!(TargetInstances::default().validate().unwrap_err().contains("target nothing"));
    }

    #[test]
    fn the_description_prefix_comes_first_and_may_not_fake_a_build() {
        let o = DeployOptions { description: Some("JIRA-12 hotfix".into()), ..Default::default() };
        assert_eq!(o.describe("ferry build 7 of web by x"), "JIRA-12 hotfix · ferry build 7 of web by x");
        let fake = DeployOptions { description: Some("ferry build 999 of web".into()), ..Default::default() };
        assert_eq!(fake.validate().unwrap_err().0, "description");
    }

    #[test]
    fn file_exists_behavior_parses_in_any_case() {
        assert_eq!(FileExistsBehavior::parse("overwrite").unwrap(), FileExistsBehavior::Overwrite);
        assert!(FileExistsBehavior::parse("clobber").unwrap_err().contains("DISALLOW, OVERWRITE or RETAIN"));
    }

    #[test]
    fn an_enabled_alarm_override_needs_alarms() {
        let o = DeployOptions {
            override_alarm_configuration: Some(AlarmOverride { enabled: true, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().0, "override_alarm_configuration");
    }
}
