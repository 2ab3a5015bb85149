//! `.ferryignore`: gitignore-style patterns for paths left out of a bundle.
//!
//! The subset that build outputs need: `#` comments, `!` re-includes, a
//! trailing `/` for directories only, a leading or inner `/` anchoring the
//! pattern at the bundle root, and `*`, `?`, `**` and `[a-z]` globs. A pattern
//! without a `/` matches a name at any depth, as in git.

/// The file read from the bundle directory's root.
pub const FILE_NAME: &str = ".ferryignore";

/// Parsed ignore rules; the last rule that matches a path decides.
#[derive(Debug, Default, Clone)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    negate: bool,
    dir_only: bool,
    anchored: bool,
}

impl IgnoreRules {
    /// Parses the text of a `.ferryignore` file.
    pub fn parse(text: &str) -> IgnoreRules {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, line) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line.strip_prefix('\\').unwrap_or(line)),
            };
            let (dir_only, line) = match line.strip_suffix('/') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            if line.is_empty() {
                continue;
            }
            let anchored = line.contains('/');
            let pattern = line.trim_start_matches('/').to_string();
            rules.push(Rule { pattern, negate, dir_only, anchored });
        }
        IgnoreRules { rules }
    }

    /// Whether `rel` (a `/`-separated path relative to the bundle root) is
    /// left out. A directory that is left out takes its whole subtree with it.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let mut ignored = false;
        for rule in &self.rules {
            if rule.dir_only && !is_dir {
                continue;
            }
            let subject = if rule.anchored { rel } else { name };
            if glob(rule.pattern.as_bytes(), subject.as_bytes()) {
                ignored = !rule.negate;
            }
        }
        ignored
    }
}

/// Glob match where `*` and `?` stay within one path segment and `**` spans
/// segments (`**/` also matches no directory at all).
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p {
        [] => s.is_empty(),
        [b'*', b'*', b'/', rest @ ..] => {
            glob(rest, s) || s.iter().enumerate().any(|(i, &c)| c == b'/' && glob(rest, &s[i + 1..]))
        }
        [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        [b'*', rest @ ..] => {
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == b'/' {
                    return false;
                }
            }
            false
        }
        [b'?', rest @ ..] => matches!(s, [c, ..] if *c != b'/') && glob(rest, &s[1..]),
        [b'[', rest @ ..] => match (class(rest, s.first().copied()), s) {
            (Some((true, after)), [_, tail @ ..]) => glob(after, tail),
            (Some((false, _)), _) => false,
            // An unclosed `[` is a literal, as in git.
            (None, [b'[', tail @ ..]) => glob(rest, tail),
            _ => false,
        },
        [b'\\', c, rest @ ..] => matches!(s, [x, ..] if x == c) && glob(rest, &s[1..]),
        [c, rest @ ..] => matches!(s, [x, ..] if x == c) && glob(rest, &s[1..]),
    }
}

/// Matches `c` against a `[...]` class whose body starts at `p` (after the
/// `[`). Returns whether it matched and the pattern after the `]`, or `None`
/// when the class is not closed.
fn class(p: &[u8], c: Option<u8>) -> Option<(bool, &[u8])> {
    let end = p.iter().skip(1).position(|&b| b == b']')? + 1;
    let (body, after) = (&p[..end], &p[end + 1..]);
    let (negated, body) = match body {
        [b'!' | b'^', rest @ ..] => (true, rest),
        _ => (false, body),
    };
    let Some(c) = c.filter(|&c| c != b'/') else { return Some((false, after)) };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == b'-' {
            hit |= (body[i]..=body[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    Some((hit != negated, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text)
    }

    #[test]
    fn name_pattern_matches_at_any_depth() {
        let r = rules("*.log\n");
        assert!(r.is_ignored("debug.log", false));
        assert!(r.is_ignored("var/app/debug.log", false));
        assert!(!r.is_ignored("debug.log.txt", false));
    }

    #[test]
    fn slash_anchors_the_pattern_at_the_root() {
        let r = rules("/build\nsrc/*.tmp\n");
        assert!(r.is_ignored("build", true));
        assert!(!r.is_ignored("web/build", true));
        assert!(r.is_ignored("src/a.tmp", false));
        assert!(!r.is_ignored("src/deep/a.tmp", false));
    }

    #[test]
    fn trailing_slash_matches_directories_only() {
        let r = rules("cache/\n");
        assert!(r.is_ignored("cache", true));
        assert!(!r.is_ignored("cache", false));
    }

    #[test]
    fn double_star_spans_directories() {
        let r = rules("docs/**/*.md\n**/node_modules\n");
        assert!(r.is_ignored("docs/a/b/x.md", false));
        assert!(r.is_ignored("docs/x.md", false));
        assert!(r.is_ignored("node_modules", true));
        assert!(r.is_ignored("web/node_modules", true));
    }

    #[test]
    fn negation_reincludes_and_last_rule_wins() {
        let r = rules("# comment\n*.env\n!prod.env\n");
        assert!(r.is_ignored("dev.env", false));
        assert!(!r.is_ignored("prod.env", false));
    }

    #[test]
    fn character_classes_and_question_marks() {
        let r = rules("file[0-9].txt\n?.bak\n[!a]x\n");
        assert!(r.is_ignored("file7.txt", false));
        assert!(!r.is_ignored("filex.txt", false));
        assert!(r.is_ignored("a.bak", false));
        assert!(!r.is_ignored("ab.bak", false));
        assert!(r.is_ignored("bx", false));
        assert!(!r.is_ignored("ax", false));
    }
}
