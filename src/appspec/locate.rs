//! Finds the line a key sits on, so problems can point into appspec.yml.
//!
//! serde_yaml_ng does not keep positions for parsed values, and an appspec is
//! a small, regular document: keys at the start of a line, optionally after a
//! list dash. Scanning lines for `key:` in document order finds them; when a
//! key cannot be found the problem is reported without a line.

/// Line lookup over one document.
pub(crate) struct Locator<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Locator { lines: text.lines().collect() }
    }

    /// The 1-based line of a top-level (unindented) `key:`.
    pub(crate) fn top_key(&self, key: &str) -> Option<usize> {
        self.lines.iter().position(|l| !l.starts_with([' ', '\t', '-']) && is_key(l, key)).map(|i| i + 1)
    }

    /// The first 1-based line after line `after` (1-based; 0 = from the top)
    /// that holds `key:`, possibly after `- `.
    pub(crate) fn key_after(&self, key: &str, after: usize) -> Option<usize> {
        self.lines.iter().enumerate().skip(after).find(|(_, l)| is_key(l, key)).map(|(i, _)| i + 1)
    }
}

fn is_key(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let t = t.strip_prefix('-').map(str::trim_start).unwrap_or(t);
    let t = strip_quotes(t, key).unwrap_or_else(|| t.strip_prefix(key).unwrap_or("\u{0}"));
    t.trim_start().starts_with(':')
}

fn strip_quotes<'t>(t: &'t str, key: &str) -> Option<&'t str> {
    for q in ['"', '\''] {
        if let Some(rest) = t.strip_prefix(q).and_then(|r| r.strip_prefix(key)).and_then(|r| r.strip_prefix(q)) {
            return Some(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_after_dashes_and_in_order() {
        let text = "version: 0.0\nhooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: 10\n    - location: b.sh\n";
        let at = Locator::new(text);
        assert_eq!(at.top_key("hooks"), Some(2));
        assert_eq!(at.key_after("location", 0), Some(4));
        assert_eq!(at.key_after("location", 4), Some(6));
        assert_eq!(at.key_after("timeout", 4), Some(5));
        assert_eq!(at.top_key("location"), None);
    }

    #[test]
    fn a_longer_key_with_the_same_prefix_does_not_match() {
        let at = Locator::new("versions: 1\nversion: 0.0\n\"os\": linux\n");
        assert_eq!(at.top_key("version"), Some(2));
        assert_eq!(at.top_key("os"), Some(3));
    }
}
