//! `.ferryignore`: gitignore patterns for paths left out of a bundle.
//!
//! Matching is the `ignore` crate's (ripgrep's), so the rules are git's own
//! (`#` comments, `!` re-includes, a trailing `/` for directories, a leading
//! or inner `/` anchoring at the bundle root, `*`, `?`, `**`, `[a-z]`) and the
//! globs compile to automata: no pattern can make matching backtrack.

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The file read from the bundle directory's root.
pub const FILE_NAME: &str = ".ferryignore";

/// A `.ferryignore` of more than this is not a list of patterns.
pub const MAX_BYTES: u64 = 1 << 20;

/// Parsed ignore rules; the last rule that matches a path decides.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    matcher: Gitignore,
}

impl Default for IgnoreRules {
    fn default() -> IgnoreRules {
        IgnoreRules { matcher: Gitignore::empty() }
    }
}

impl IgnoreRules {
    /// Parses the text of a `.ferryignore` file. The error names the line
    /// and why git's glob syntax refuses it (e.g. an unclosed `[`).
    pub fn parse(text: &str) -> Result<IgnoreRules, String> {
        // Relative paths are matched as they are; the root only strips
        // absolute ones, which ferry never passes.
        let mut builder = GitignoreBuilder::new("");
        for (n, line) in text.lines().enumerate() {
            builder.add_line(None, line).map_err(|e| format!("line {}: `{}`: {e}", n + 1, line.trim_end()))?;
        }
        let matcher = builder.build().map_err(|e| e.to_string())?;
        Ok(IgnoreRules { matcher })
    }

    /// Whether `rel` (a `/`-separated path relative to the bundle root) is
    /// left out. A directory that is left out takes its whole subtree with it.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        self.matcher.matched(rel, is_dir).is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).unwrap()
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

    #[test]
    fn an_unclosed_bracket_is_not_a_class() {
        let r = rules("file[0-9.txt\n*.log\n");
        assert!(!r.is_ignored("file7.txt", false));
        assert!(r.is_ignored("x.log", false));
    }

    /// Nine `*` against a 40-character name took 2.2 s with the old
    /// backtracking matcher, twelve never finished. How long it takes now is
    /// `scripts/bench ignore`'s to say; this proves the answer is right.
    #[test]
    fn many_stars_still_match_correctly() {
        let r = rules(&format!("{}b\n", "a*".repeat(12)));
        assert!(!r.is_ignored(&"a".repeat(40), false));
        assert!(r.is_ignored(&format!("{}b", "a".repeat(40)), false));
    }
}
