//! How a [`ReleasePlan`] reads as text: a header, what runs now, the
//! deployment configuration, then the files and hooks that change. Printed
//! on stdout as the command's result (`ferry plan > plan.txt`); the JSON
//! renderer writes the value as it is.

use super::{human_bytes, short};
use crate::event::{HookEventChange, LambdaPlan, ReleasePlan};

/// Files listed per kind of change before the rest is counted only.
const LISTED: usize = 200;

/// The plan's lines.
pub(crate) fn lines(p: &ReleasePlan) -> Vec<String> {
    let env = if p.environment.is_empty() { String::new() } else { format!("{} ", p.environment) };
    let mut out = vec![format!("plan for {env}({}/{})", p.application, p.deployment_group)];
    let b = &p.bundle;
    out.push(format!(
        "  new bundle:  {} ({}, {}, {} files, sha256 {})",
        b.path,
        b.bundle_type,
        human_bytes(b.size),
        b.files,
        short(&b.sha256, 12)
    ));
    match &p.running {
        None => out.push("  running:     nothing: this is the group's first release".into()),
        Some(r) => {
            out.push(format!(
                "  running:     {} from {}",
                if r.revision.is_empty() { "?" } else { &r.revision },
                r.deployment_id
            ));
            let when = r.completed_at.as_deref().or(r.created_at.as_deref()).unwrap_or("an unknown time");
            let what = r.description.as_deref().map(|d| format!(": \"{d}\"")).unwrap_or_default();
            out.push(format!("  deployed by: {} at {when}{what}", r.creator));
            if let Some(n) = r.instances {
                out.push(format!("  instances:   {n}"));
            }
        }
    }
    let from = match p.deployment_config_from.as_str() {
        "environment" => "set for this environment",
        "group" => "the group's own",
        _ => "CodeDeploy's default",
    };
    out.push(format!("  config:      {} ({from})", p.deployment_config));
    if p.confirm {
        out.push(format!("  confirm:     releasing asks for `{}` to be typed (or --yes)", p.environment));
    }
    match &p.lambda {
        Some(l) => lambda(l, &mut out),
        None => {
            files(p, &mut out);
            hooks(p, &mut out);
        }
    }
    out
}

fn lambda(l: &LambdaPlan, out: &mut Vec<String>) {
    out.push(format!(
        "  function:    {} alias {} on version {} (CodeSha256 {})",
        l.function, l.alias, l.alias_version, l.alias_code_sha256
    ));
    out.push(if l.code_unchanged {
        format!(
            "  new code:    CodeSha256 {}, the code version {} runs: Lambda publishes no new version and the \
             deployment moves no traffic",
            l.new_code_sha256, l.alias_version
        )
    } else {
        format!(
            "  new code:    CodeSha256 {}: published as a new version, then alias {} moves onto it",
            l.new_code_sha256, l.alias
        )
    });
    if l.hooks.is_empty() {
        out.push("  hooks:       none".into());
    }
    for h in &l.hooks {
        out.push(format!("  hook:        {} runs function {}", h.event, h.function));
    }
}

fn files(p: &ReleasePlan, out: &mut Vec<String>) {
    let f = &p.files;
    if !f.compared {
        out.push(format!("  files:       not compared: {}", f.not_compared.as_deref().unwrap_or("unknown")));
        return;
    }
    if p.first_release {
        out.push(format!("  files:       {} added (first release)", f.added.len()));
    } else {
        out.push(format!(
            "  files:       {} added, {} removed, {} changed, {} unchanged",
            f.added.len(),
            f.removed.len(),
            f.changed.len(),
            f.unchanged
        ));
    }
    let mut listed = 0;
    let mut list = |line: String, out: &mut Vec<String>| {
        listed += 1;
        if listed <= LISTED {
            out.push(line);
        }
    };
    for a in &f.added {
        list(format!("    + {} ({})", a.path, human_bytes(a.size)), out);
    }
    for r in &f.removed {
        list(format!("    - {}", r.path), out);
    }
    for c in &f.changed {
        list(format!("    ~ {} ({} → {})", c.path, human_bytes(c.old_size), human_bytes(c.new_size)), out);
    }
    if listed > LISTED {
        out.push(format!("    … and {} more (`--output json` lists every file)", listed - LISTED));
    }
}

fn hooks(p: &ReleasePlan, out: &mut Vec<String>) {
    let h = &p.hooks;
    if !h.compared {
        out.push(format!("  hooks:       not compared: {}", h.not_compared.as_deref().unwrap_or("unknown")));
        return;
    }
    if h.events.is_empty() {
        out.push("  hooks:       unchanged".into());
        return;
    }
    out.push("  hooks:".into());
    for e in &h.events {
        out.push(format!("    {}: {}", e.event, event_changes(e)));
    }
}

fn event_changes(e: &HookEventChange) -> String {
    let mut parts = Vec::new();
    parts.extend(e.added.iter().map(|s| format!("+ {s}")));
    parts.extend(e.removed.iter().map(|s| format!("- {s}")));
    parts.extend(e.changed.iter().map(|s| format!("~ {s}")));
    parts.join(", ")
}
