//! The agent's rules for one `permissions` item on Linux: `type`, `except`,
//! `mode`, `acls` and `context`, each refused as its parser classes
//! (ModeInfo, AceInfo, ContextInfo, RangeInfo) refuse it.

use super::psych::{self, Node, Value};

/// One refusal: where, why, the fix, and whether the agent refuses it too
/// (else ferry is stricter on purpose).
pub(crate) struct Problem {
    pub line: usize,
    pub cause: String,
    pub fix: String,
    pub agent_refuses: bool,
}

fn problem(node: &Node, cause: String, fix: &str) -> Problem {
    Problem { line: node.line, cause, fix: fix.into(), agent_refuses: true }
}

/// Everything the agent would refuse in `item` (a mapping with an object).
pub(crate) fn check(item: &Node) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(t) = item.get("type") {
        types(t, &mut out);
    }
    let list_like = |e: &Node| match &e.value {
        Value::Null | Value::Bool(false) | Value::Seq(_) => true,
        Value::Map(m) => m.is_empty(),
        _ => false,
    };
    if let Some(e) = item.get("except").filter(|e| !list_like(e)) {
        out.push(problem(e, format!("`except: {}` must be a list of names", e.shown()), "Write `except: [name]`."));
    }
    if let Some(m) = item.get("mode").filter(|m| !m.is_nil()) {
        out.extend(mode(m));
    }
    if let Some(a) = item.get("acls").filter(|a| !a.is_nil()) {
        acls(a, &mut out);
    }
    if let Some(c) = item.get("context").filter(|c| !c.is_nil()) {
        context(c, &mut out);
    }
    out
}

fn types(t: &Node, out: &mut Vec<Problem>) {
    const FIX: &str = "Write `type: [file]`, `type: [directory]` or both, or leave it out for both.";
    match &t.value {
        Value::Null | Value::Bool(false) => {}
        Value::Map(m) if m.is_empty() => {}
        Value::Seq(items) => {
            for i in items {
                if !matches!(&i.value, Value::Str(s) if s == "file" || s == "directory") {
                    out.push(problem(
                        i,
                        format!("`type: [{}]`: the agent sets permissions only on `file` and `directory` objects", i.shown()),
                        FIX,
                    ));
                }
            }
        }
        _ => out.push(problem(t, format!("`type: {}` must be a list", t.shown()), FIX)),
    }
}

/// The agent takes `mode.to_s`, pads it to three digits and refuses more
/// than four or anything but 0-7. YAML 1.1 reads a leading zero as octal,
/// so `0644` reaches it as 420: ferry refuses every leading-zero mode.
fn mode(m: &Node) -> Option<Problem> {
    const FIX: &str =
        "Write the octal digits as chmod takes them, without a leading zero (`mode: 644`) or in quotes (`mode: \"0644\"`).";
    if let (Some(raw), Value::Int(n)) = (&m.plain, &m.value)
        && raw.trim_start_matches(['+', '-']).starts_with('0')
        && raw.len() > 1
        && !raw.contains(['x', 'b'])
    {
        let read = n.to_string();
        // 0420 from 0644 passes the agent: stricter on purpose, the files
        // would land with the wrong mode.
        let passes = read.bytes().all(|b| (b'0'..=b'7').contains(&b)) && read.len() <= 4;
        let cause = if passes {
            format!(
                "`mode: {raw}` has a leading zero, so YAML 1.1 reads it as the octal number {n} and the agent would \
                 install the objects as 0{read:0>3}, not {raw}, and report success"
            )
        } else {
            format!(
                "`mode: {raw}` has a leading zero, so YAML 1.1 reads it as the octal number {n}, which as a mode has \
                 digits that are not octal"
            )
        };
        let fix = format!("Write `mode: {}` or `mode: \"{raw}\"`.", raw.trim_start_matches('0'));
        return Some(Problem { line: m.line, cause, fix, agent_refuses: !passes });
    }
    let text = match psych::ruby_to_s(&m.value) {
        Some(t) => t,
        None => return Some(problem(m, "`mode:` is a list or mapping, not octal digits".into(), FIX)),
    };
    if text.is_empty() {
        let cause = "`mode: \"\"` is empty; the agent pads it to 000 and makes the objects unreadable".into();
        return Some(Problem { agent_refuses: false, ..problem(m, cause, FIX) });
    }
    let padded = format!("{text:0>3}");
    if padded.len() > 4 {
        return Some(problem(m, format!("`mode: {}` is longer than four digits", m.shown()), FIX));
    }
    if let Some(bad) = padded.chars().find(|c| !('0'..='7').contains(c)) {
        return Some(problem(m, format!("`mode: {}` has `{bad}`, which is not an octal digit (0-7)", m.shown()), FIX));
    }
    None
}

fn acls(a: &Node, out: &mut Vec<Problem>) {
    const FIX: &str = "Write entries as `[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:name:rwx` and set the owner's, group's and others' base entries with `mode:`.";
    let items = match &a.value {
        Value::Seq(items) => items,
        Value::Map(m) if m.is_empty() => return,
        _ => {
            out.push(problem(a, format!("`acls: {}` must be a list of entries", a.shown()), "Write `acls: [\"u:deploy:rwx\"]`."));
            return;
        }
    };
    for i in items {
        let Value::Str(ace) = &i.value else {
            out.push(problem(i, format!("the acl entry `{}` is not text", i.shown()), FIX));
            continue;
        };
        if let Err(why) = ace_ok(ace) {
            out.push(problem(i, format!("the acl entry `{ace}` is invalid ({why})"), FIX));
        }
    }
}

/// The agent's AceInfo rules.
fn ace_ok(ace: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = ace.split(':').rev().collect();
    if !(2..=4).contains(&parts.len()) {
        return Err("two to four `:`-separated parts");
    }
    let is = |p: &str, short: &str, long: &str| p == short || p == long;
    let mut default = false;
    let mut kind: Option<&str> = None;
    let mut name = "";
    if parts.len() == 4 {
        if !is(parts[3], "d", "default") {
            return Err("four parts must start with `d:` or `default:`");
        }
        default = true;
    }
    if parts.len() >= 3 {
        let p = parts[2];
        if is(p, "d", "default") {
            if default {
                return Err("`default` twice");
            }
            default = true;
        } else if is(p, "m", "mask") {
            kind = Some("mask");
        } else if is(p, "o", "other") {
            kind = Some("other");
        } else if is(p, "g", "group") {
            kind = Some("group");
        } else if is(p, "u", "user") {
            kind = Some("user");
        } else {
            return Err("unknown entry type");
        }
    }
    let p = parts[1];
    if is(p, "m", "mask") || is(p, "o", "other") {
        let word = if p.starts_with('m') { "mask" } else { "other" };
        if kind.is_none() { kind = Some(word) } else { name = word }
    } else {
        kind.get_or_insert("user");
        name = p;
    }
    if matches!(kind, Some("mask" | "other")) && !name.is_empty() {
        return Err("mask and other entries take no name");
    }
    if !default && kind != Some("mask") && name.is_empty() {
        return Err("a base entry without a name belongs in `mode:`");
    }
    let perms = parts[0];
    let octal = perms.len() == 1 && perms.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !octal && !perms.chars().all(|c| "rwx-".contains(c)) {
        return Err("permissions are r, w, x and - or one octal digit");
    }
    Ok(())
}

fn context(c: &Node, out: &mut Vec<Problem>) {
    const FIX: &str = "Write `context: {type: httpd_sys_content_t}`, with `name:` and `range:` (`s0-s15:c0.c1023`) if needed.";
    if !matches!(c.value, Value::Map(_)) {
        out.push(problem(c, format!("`context: {}` must be a mapping with a `type:`", c.shown()), FIX));
        return;
    }
    if c.get("type").is_none_or(Node::is_nil) {
        out.push(problem(c, "the SELinux `context:` has no `type:`".into(), FIX));
    }
    if let Some(r) = c.get("range").filter(|r| !r.is_nil()) {
        let ok = match &r.value {
            Value::Str(s) => range_ok(s),
            _ => false,
        };
        if !ok {
            out.push(problem(r, format!("the SELinux `range: {}` is invalid", r.shown()), FIX));
        }
    }
}

/// The agent's RangeInfo rules: `s#[-s#][:c#[.c#](,c#[.c#])*]`, categories
/// at most c1023, each once, ranges not reversed.
fn range_ok(range: &str) -> bool {
    fn parts(input: &str, sep: char) -> Option<Vec<&str>> {
        let p: Vec<&str> = input.splitn(2, sep).collect();
        p.iter().all(|s| !s.is_empty()).then_some(p)
    }
    fn number(s: &str, prefix: char) -> Option<u64> {
        let digits = s.strip_prefix(prefix)?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().unwrap_or(u64::MAX))
    }
    let Some(p) = parts(range, ':') else { return false };
    let Some(sens) = parts(p[0], '-') else { return false };
    let Some(low) = number(sens[0], 's') else { return false };
    if let Some(high) = sens.get(1) {
        match number(high, 's') {
            Some(h) if h >= low => {}
            _ => return false,
        }
    }
    let Some(cats) = p.get(1) else { return true };
    let mut all = Vec::new();
    // Ruby's split drops trailing empty fields.
    let fields: Vec<&str> = cats.split(',').collect();
    let keep = fields.iter().rposition(|f| !f.is_empty()).map_or(0, |i| i + 1);
    for f in &fields[..keep] {
        let cat = |c: &str| number(c, 'c').filter(|n| *n <= 1023);
        if f.contains('.') {
            let Some(ends) = parts(f, '.') else { return false };
            let (Some(a), Some(b)) = (cat(ends[0]), ends.get(1).and_then(|e| cat(e))) else { return false };
            if b < a {
                return false;
            }
            all.extend(a..=b);
        } else {
            let Some(n) = cat(f) else { return false };
            all.push(n);
        }
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    all.len() == n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_entries_follow_the_agents_rules() {
        for ok in ["u:deploy:rwx", "d:u::rw", "m::rx", "group:web:5", "default:user:bob:r-x", "u:bob:"] {
            assert_eq!(ace_ok(ok), Ok(()), "{ok}");
        }
        for bad in ["u::rwx", "a:b:c:d:e", "u:deploy:rwz", "o:bob:r", "x:bob:r", "d:d:u:r", "rwx"] {
            assert!(ace_ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selinux_ranges_follow_the_agents_rules() {
        for ok in ["s0", "s0-s15", "s0:c0.c1023", "s0-s15:c0,c3.c5", "s0:c1,"] {
            assert!(range_ok(ok), "{ok}");
        }
        for bad in ["s1-s0", "s0:c1024", "0", "s0:c1,c1", "s0:c5.c1", "s0:", "s", "s0:c0.c1.c2"] {
            assert!(!range_ok(bad), "{bad}");
        }
    }
}
