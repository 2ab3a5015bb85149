//! diff: the new bundle's files and hooks against the running bundle's.

use std::collections::BTreeMap;

use crate::event::{ChangedFile, FileChanges, HookEventChange, PlannedFile};

/// Path → (size, CRC-32).
pub type Files = BTreeMap<String, (u64, u32)>;

fn hex(crc: u32) -> String {
    format!("{crc:08x}")
}

fn planned(path: &str, (size, crc): (u64, u32)) -> PlannedFile {
    PlannedFile { path: path.to_string(), size, crc32: hex(crc) }
}

/// Files added, removed and changed (size or CRC-32) from `old` to `new`.
pub fn files(old: &Files, new: &Files) -> FileChanges {
    let mut out = FileChanges { compared: true, ..FileChanges::default() };
    for (path, &n) in new {
        match old.get(path) {
            None => out.added.push(planned(path, n)),
            Some(&o) if o == n => out.unchanged += 1,
            Some(&o) => out.changed.push(ChangedFile {
                path: path.clone(),
                old_size: o.0,
                new_size: n.0,
                old_crc32: hex(o.1),
                new_crc32: hex(n.1),
            }),
        }
    }
    out.removed = old.iter().filter(|(p, _)| !new.contains_key(*p)).map(|(p, &o)| planned(p, o)).collect();
    out
}

/// The lifecycle events of an EC2/on-premises deployment, in the order the
/// agent runs them: the plan lists hook changes in that order.
const ORDER: [&str; 9] = [
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// One hook script as an appspec declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Script {
    timeout: Option<String>,
    runas: Option<String>,
}

/// Event → script location → its settings, from an appspec's text; an
/// appspec that does not parse has no hooks here (the checks say why).
fn hooks(text: &str) -> BTreeMap<String, BTreeMap<String, Script>> {
    let mut out = BTreeMap::new();
    let Ok(doc) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else { return out };
    let Some(map) = doc.get("hooks").and_then(|h| h.as_mapping()) else { return out };
    let scalar = |v: Option<&serde_yaml_ng::Value>| {
        v.and_then(|v| match v {
            serde_yaml_ng::Value::String(s) => Some(s.clone()),
            serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    for (event, scripts) in map {
        let Some(event) = event.as_str() else { continue };
        let mut by_location = BTreeMap::new();
        for s in scripts.as_sequence().into_iter().flatten() {
            if let Some(location) = scalar(s.get("location")) {
                let script = Script { timeout: scalar(s.get("timeout")), runas: scalar(s.get("runas")) };
                by_location.insert(super::local::normalize(&location), script);
            }
        }
        out.insert(event.to_string(), by_location);
    }
    out
}

/// Per lifecycle event, the scripts added, removed and changed: a script in
/// both changed when its timeout, its runas or its file (in `file_changed`)
/// did.
pub fn hook_changes(old: Option<&str>, new: Option<&str>, file_changed: &dyn Fn(&str) -> bool) -> Vec<HookEventChange> {
    let (old, new) = (hooks(old.unwrap_or_default()), hooks(new.unwrap_or_default()));
    let empty = BTreeMap::new();
    let mut events: Vec<&String> = old.keys().chain(new.keys()).collect();
    events.sort_by_key(|e| (ORDER.iter().position(|o| o == e).unwrap_or(ORDER.len()), e.to_string()));
    events.dedup();
    let mut out = Vec::new();
    for event in events {
        let (o, n) = (old.get(event).unwrap_or(&empty), new.get(event).unwrap_or(&empty));
        let change = HookEventChange {
            event: event.clone(),
            added: n.keys().filter(|l| !o.contains_key(*l)).cloned().collect(),
            removed: o.keys().filter(|l| !n.contains_key(*l)).cloned().collect(),
            changed: n
                .iter()
                .filter(|(l, s)| o.get(*l).is_some_and(|was| was != *s || file_changed(l)))
                .map(|(l, _)| l.clone())
                .collect(),
        };
        if !(change.added.is_empty() && change.removed.is_empty() && change.changed.is_empty()) {
            out.push(change);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_size_and_crc() {
        let old: Files = [("a".into(), (1, 1)), ("b".into(), (2, 2)), ("gone".into(), (3, 3))].into();
        let new: Files = [("a".into(), (1, 1)), ("b".into(), (2, 9)), ("new".into(), (4, 4))].into();
        let d = files(&old, &new);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.added.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["new"]);
        assert_eq!(d.removed.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["gone"]);
        assert_eq!((d.changed[0].path.as_str(), d.changed[0].new_crc32.as_str()), ("b", "00000009"));
    }

    #[test]
    fn hooks_changes_come_per_event_in_lifecycle_order() {
        let old = "hooks:\n  ValidateService:\n    - location: scripts/v.sh\n      timeout: 30\n  BeforeInstall:\n    - location: scripts/old.sh\n";
        let new = "hooks:\n  ValidateService:\n    - location: scripts/v.sh\n      timeout: 60\n  ApplicationStart:\n    - location: scripts/start.sh\n  BeforeInstall:\n    - location: /scripts/same.sh\n";
        let got = hook_changes(Some(old), Some(new), &|_| false);
        let events: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["BeforeInstall", "ApplicationStart", "ValidateService"]);
        assert_eq!(
            (got[0].added.clone(), got[0].removed.clone()),
            (vec!["scripts/same.sh".to_string()], vec!["scripts/old.sh".to_string()])
        );
        assert_eq!(got[2].changed, ["scripts/v.sh"], "the timeout changed");
        let same = "hooks:\n  ValidateService:\n    - location: scripts/v.sh\n";
        assert!(hook_changes(Some(same), Some(same), &|_| false).is_empty());
        assert_eq!(
            hook_changes(Some(same), Some(same), &|l| l == "scripts/v.sh")[0].changed,
            ["scripts/v.sh"],
            "its file changed"
        );
    }
}
