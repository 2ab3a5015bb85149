//! Hook output shown once per distinct output, with the instances that
//! printed it: ten instances failing one hook the same way is one block
//! under ten failure lines, not ten copies of it.
//!
//! The plain and TTY renderers print a failure's line at once and hold its
//! output back until the read that found it ends (the next event that is
//! not one instance's progress: a skipped instance, the deployment's
//! status, its end, an error).
//! Identical outputs held together become one block naming every instance;
//! one identical to an output already shown names the instances it was
//! shown for instead of repeating it. JSON keeps every instance's own data.

use std::collections::HashMap;

use super::{Event, failure_line, hook_output, one_line};

/// One output: the deployment, the hook, its script and the tail itself.
type Key = (String, String, Option<String>, String);

/// Outputs held back, and those already shown.
#[derive(Default)]
pub(crate) struct HookOutputs {
    /// In the order first seen: the output and its instances.
    held: Vec<(Key, Vec<String>)>,
    /// Output shown → the instances it was shown for.
    shown: HashMap<Key, Vec<String>>,
}

impl HookOutputs {
    /// For a failed lifecycle event: the text to print now (the failure's
    /// line), its output held back. `None` for any other event.
    pub(crate) fn failure(&mut self, event: &Event) -> Option<String> {
        let Event::LifecycleFailed { deployment_id, target_id, lifecycle_event, error_code, script_name, message, log_tail } =
            event
        else {
            return None;
        };
        let line = failure_line(target_id, lifecycle_event, error_code.as_deref(), script_name.as_deref(), message.as_deref());
        if let Some(tail) = log_tail.as_ref().filter(|t| !t.trim().is_empty()) {
            let key = (deployment_id.clone(), lifecycle_event.clone(), script_name.clone(), tail.clone());
            match self.held.iter_mut().find(|(k, _)| *k == key) {
                Some((_, targets)) => targets.push(target_id.clone()),
                None => self.held.push((key, vec![target_id.clone()])),
            }
        }
        Some(line)
    }

    /// Whether `event` belongs to the read a held output came from: one
    /// instance's progress, which does not release what is held. A skipped
    /// instance does: CodeDeploy skips the rest once the failures that end
    /// the deployment are in, so the output reads next to them.
    pub(crate) fn same_read(event: &Event) -> bool {
        matches!(
            event,
            Event::LifecycleFailed { .. }
                | Event::TargetEventChanged { .. }
                | Event::TargetFinished { .. }
                | Event::UploadProgress { .. }
        )
    }

    /// The held outputs as text (lines indented, led by a line break), one
    /// block per distinct output; `None` when nothing is held.
    pub(crate) fn release(&mut self) -> Option<String> {
        if self.held.is_empty() {
            return None;
        }
        let mut text = String::new();
        for (key, targets) in std::mem::take(&mut self.held) {
            let (_, lifecycle_event, script_name, tail) = &key;
            match self.shown.get_mut(&key) {
                Some(before) => {
                    let of: Vec<String> = targets.iter().map(|t| one_line(t).into_owned()).collect();
                    text.push_str(&format!(
                        "\n    --- hook output of {}: the same as {}'s above ---",
                        of.join(", "),
                        before.iter().map(|t| one_line(t).into_owned()).collect::<Vec<_>>().join(", ")
                    ));
                    before.extend(targets);
                }
                None => {
                    let names: Vec<&str> = targets.iter().map(String::as_str).collect();
                    text.push_str(&hook_output(tail, lifecycle_event, script_name.as_deref(), &names));
                    self.shown.insert(key, targets);
                }
            }
        }
        Some(text.trim_start_matches('\n').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(target: &str, tail: &str) -> Event {
        Event::LifecycleFailed {
            deployment_id: "d-1".into(),
            target_id: target.into(),
            lifecycle_event: "AfterInstall".into(),
            error_code: Some("ScriptFailed".into()),
            script_name: Some("scripts/migrate.sh".into()),
            message: Some("failed with exit code 1".into()),
            log_tail: Some(tail.into()),
        }
    }

    #[test]
    fn identical_output_of_many_instances_is_one_block_naming_them_all() {
        let mut h = HookOutputs::default();
        let same = "Script - scripts/migrate.sh\n[stderr]relation exists";
        for t in ["i-1", "i-2", "i-3"] {
            assert!(h.failure(&failed(t, same)).unwrap().starts_with(&format!("instance {t} failed AfterInstall")));
        }
        h.failure(&failed("i-4", "[stderr]disk full"));
        let text = h.release().unwrap();
        assert_eq!(text.matches("relation exists").count(), 1, "{text}");
        assert!(text.contains("--- hook output of i-1, i-2, i-3 (last lines; ! = stderr) ---"), "{text}");
        assert!(text.contains("--- hook output of i-4 (last lines"), "{text}");
        assert!(text.lines().all(|l| l.starts_with("    ")), "{text}");
        assert!(h.release().is_none(), "released once");
        h.failure(&failed("i-5", same));
        let later = h.release().unwrap();
        assert_eq!(later, "    --- hook output of i-5: the same as i-1, i-2, i-3's above ---");
    }
}
