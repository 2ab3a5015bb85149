//! `[wave.NAME]`: one release shipped through several environments in
//! ordered stages, halting on the first failure (issue 16).
//!
//! Data layer. A wave only names `[env.*]` tables; each environment keeps its
//! own role, region, bucket, application and group. Everything is checked
//! when the file is read, so a wave that names an unknown environment or
//! lists one twice stops ferry with exit code 1 before any AWS call.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

/// One `[wave.NAME]` table as written in ferry.toml.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSettings {
    /// Stages in order, each a list of `[env.*]` names released in parallel.
    pub stages: Option<Vec<Vec<String>>>,
    /// How long each stage's groups must stay healthy before the next stage
    /// starts (`10m`, `90s`); none when unset.
    pub bake: Option<String>,
    /// What a failure rolls back: `failed` (the default), `all` or `none`.
    pub rollback: Option<String>,
}

/// The keys of a `[wave.NAME]` table, for did-you-mean hints.
pub const WAVE_KEYS: &[&str] = &["stages", "bake", "rollback"];

/// `rollback` / `--wave-rollback`: what a halted wave rolls back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveRollback {
    /// Only the environments whose release failed (the default): the rest
    /// keep the new release, which passed there.
    #[default]
    Failed,
    /// Every environment the wave released to, failed or not: the wave is
    /// all or nothing.
    All,
    /// Nothing: CodeDeploy's own automatic rollback (if the group has one)
    /// is all that happens.
    None,
}

impl WaveRollback {
    /// Parses `failed`, `all` or `none`.
    pub fn parse(s: &str) -> Result<WaveRollback, String> {
        match s.trim() {
            "failed" => Ok(WaveRollback::Failed),
            "all" => Ok(WaveRollback::All),
            "none" => Ok(WaveRollback::None),
            other => Err(format!("`{other}` is not a rollback policy; use failed, all or none")),
        }
    }

    /// The word used in ferry.toml, events and the receipt.
    pub fn as_str(self) -> &'static str {
        match self {
            WaveRollback::Failed => "failed",
            WaveRollback::All => "all",
            WaveRollback::None => "none",
        }
    }
}

/// A validated wave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    /// The wave's name (`prod`).
    pub name: String,
    /// Stages in order; each non-empty, and no environment appears twice in
    /// the whole wave.
    pub stages: Vec<Vec<String>>,
    /// The bake after each stage, if any.
    pub bake: Option<Duration>,
    /// The rollback policy from ferry.toml (`--wave-rollback` overrides it).
    pub rollback: WaveRollback,
}

impl Wave {
    /// Every environment of the wave, in stage order.
    pub fn envs(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().flatten().map(String::as_str)
    }
}

/// Checks one `[wave.NAME]` table against the environments the file
/// defines. The error is the reason alone; the caller names file and wave.
pub fn validate(name: &str, settings: &WaveSettings, envs: &BTreeSet<&str>) -> Result<Wave, String> {
    let Some(stages) = settings.stages.as_ref().filter(|s| !s.is_empty()) else {
        return Err("it has no stages. Add `stages = [[\"env-a\"], [\"env-b\", \"env-c\"]]`: each inner list is one \
                    stage of [env.*] names released in parallel, stages in order."
            .into());
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, stage) in stages.iter().enumerate() {
        let n = i + 1;
        if stage.is_empty() {
            return Err(format!("stage {n} is empty. Name at least one [env.*] in it, or remove the `[]`."));
        }
        for env in stage {
            if let Some(first) = seen.insert(env.as_str(), n) {
                let where_ = if first == n { format!("twice in stage {n}") } else { format!("in stages {first} and {n}") };
                return Err(format!(
                    "environment `{env}` appears {where_}. A wave releases to each environment once; remove one of them."
                ));
            }
            if !envs.contains(env.as_str()) {
                let known: Vec<&str> = envs.iter().copied().collect();
                let hint =
                    super::did_you_mean(env, known.iter().copied()).map(|s| format!(" Did you mean `{s}`?")).unwrap_or_default();
                return Err(format!(
                    "stage {n} names environment `{env}`, which has no [env.{env}] table.{hint} Defined environments: {}.",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            }
        }
    }
    let bake = match &settings.bake {
        None => None,
        Some(text) => {
            let d = crate::duration::parse(text).map_err(|e| format!("`bake` = \"{text}\" is not valid: {e}."))?;
            (!d.is_zero()).then_some(d)
        }
    };
    let rollback = match &settings.rollback {
        None => WaveRollback::default(),
        Some(text) => WaveRollback::parse(text).map_err(|e| format!("`rollback` = \"{text}\" is not valid: {e}."))?,
    };
    Ok(Wave { name: name.to_string(), stages: stages.clone(), bake, rollback })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs() -> BTreeSet<&'static str> {
        ["prod-eu", "prod-us", "prod-us-canary"].into_iter().collect()
    }

    fn settings(stages: &[&[&str]]) -> WaveSettings {
        WaveSettings {
            stages: Some(stages.iter().map(|s| s.iter().map(|e| e.to_string()).collect()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_wave_keeps_its_stages_in_order_and_defaults_to_rolling_back_the_failed() {
        let mut s = settings(&[&["prod-eu"], &["prod-us", "prod-us-canary"]]);
        s.bake = Some("10m".into());
        let w = validate("prod", &s, &envs()).unwrap();
        assert_eq!(w.stages.len(), 2);
        assert_eq!(w.envs().collect::<Vec<_>>(), ["prod-eu", "prod-us", "prod-us-canary"]);
        assert_eq!(w.bake, Some(Duration::from_secs(600)));
        assert_eq!(w.rollback, WaveRollback::Failed);
    }

    #[test]
    fn an_unknown_environment_is_named_with_a_suggestion() {
        let e = validate("prod", &settings(&[&["prod-eu"], &["prod-uss"]]), &envs()).unwrap_err();
        assert!(e.contains("stage 2 names environment `prod-uss`") && e.contains("Did you mean `prod-us`?"), "{e}");
    }

    #[test]
    fn an_empty_stage_and_an_empty_wave_are_refused() {
        let e = validate("prod", &settings(&[&["prod-eu"], &[]]), &envs()).unwrap_err();
        assert!(e.contains("stage 2 is empty"), "{e}");
        let e = validate("prod", &WaveSettings::default(), &envs()).unwrap_err();
        assert!(e.contains("no stages"), "{e}");
        let e = validate("prod", &settings(&[]), &envs()).unwrap_err();
        assert!(e.contains("no stages"), "{e}");
    }

    #[test]
    fn an_environment_listed_twice_is_refused_with_both_stages() {
        let e = validate("prod", &settings(&[&["prod-eu"], &["prod-us", "prod-eu"]]), &envs()).unwrap_err();
        assert!(e.contains("`prod-eu` appears in stages 1 and 2"), "{e}");
        let e = validate("prod", &settings(&[&["prod-eu", "prod-eu"]]), &envs()).unwrap_err();
        assert!(e.contains("twice in stage 1"), "{e}");
    }

    #[test]
    fn a_bad_bake_or_rollback_word_is_refused() {
        let mut s = settings(&[&["prod-eu"]]);
        s.bake = Some("10 minutes please".into());
        assert!(validate("prod", &s, &envs()).unwrap_err().contains("`bake`"));
        let mut s = settings(&[&["prod-eu"]]);
        s.rollback = Some("some".into());
        let e = validate("prod", &s, &envs()).unwrap_err();
        assert!(e.contains("failed, all or none"), "{e}");
        s.rollback = Some("all".into());
        assert_eq!(validate("prod", &s, &envs()).unwrap().rollback, WaveRollback::All);
    }

    #[test]
    fn a_zero_bake_means_no_bake() {
        let mut s = settings(&[&["prod-eu"]]);
        s.bake = Some("0s".into());
        assert_eq!(validate("prod", &s, &envs()).unwrap().bake, None);
    }
}
