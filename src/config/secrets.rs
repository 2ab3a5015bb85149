//! A ferry.toml parse error with no secret in it. The parser's report quotes
//! the offending line and may name a value (`invalid type: string "…"`):
//! every value of a key that is or looks secret ([`keys::looks_secret`]) is
//! found by the parser's own spans (toml_edit), not by splitting lines, and
//! hidden wherever it appears. A file too broken to parse has no spans: its
//! quoted line is hidden whole when it mentions anything secret-looking.

use toml_edit::{ImDocument, Item, Table, Value};

use super::keys;

const HIDDEN: &str = "(hidden)";

/// `message` (the parser's report on `text`) with every secret in `text` hidden.
pub fn redact(text: &str, message: &str) -> String {
    let mut secrets: Vec<String> = Vec::new();
    match ImDocument::parse(text) {
        Ok(doc) => table(doc.as_table(), text, &mut secrets),
        Err(e) => {
            if let Some(span) = e.span() {
                let line = quoted_line(text, span.start);
                if keys::looks_secret(line) {
                    secrets.push(line.to_string());
                }
            }
        }
    }
    secrets.retain(|s| !s.trim().is_empty());
    // Longest first, so a whole value is hidden before any part of it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.into_iter().fold(message.to_string(), |out, s| out.replace(&s, HIDDEN))
}

/// The line the parser quotes for an error at byte `at`, as it quotes it.
fn quoted_line(text: &str, at: usize) -> &str {
    let at = at.min(text.len().saturating_sub(1));
    let start = text.get(..at).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    text[start..].split('\n').next().unwrap_or_default()
}

fn table(t: &Table, text: &str, out: &mut Vec<String>) {
    for (key, item) in t.iter() {
        if keys::looks_secret(key) {
            secret(item.span(), item.as_value(), text, out);
        }
        match item {
            Item::Table(t) => table(t, text, out),
            Item::ArrayOfTables(a) => a.iter().for_each(|t| table(t, text, out)),
            Item::Value(v) => value(v, text, out),
            Item::None => {}
        }
    }
}

fn value(v: &Value, text: &str, out: &mut Vec<String>) {
    match v {
        Value::InlineTable(t) => {
            for (key, v) in t.iter() {
                if keys::looks_secret(key) {
                    secret(v.span(), Some(v), text, out);
                }
                value(v, text, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| value(v, text, out)),
        _ => {}
    }
}

/// A secret value: as written (quotes and escapes included) and as read.
fn secret(span: Option<std::ops::Range<usize>>, v: Option<&Value>, text: &str, out: &mut Vec<String>) {
    if let Some(raw) = span.and_then(|s| text.get(s)) {
        out.push(raw.trim().to_string());
    }
    match v {
        Some(Value::String(s)) => out.push(s.value().clone()),
        Some(v) => out.push(v.to_string().trim().to_string()),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_hidden_where_the_parser_says_it_is_even_escaped() {
        let text = "[env.p]\nexternal_id = \"Tr0ub\\u0034dor\"\nregion = 1\n";
        let message = "3 | external_id = \"Tr0ub\\u0034dor\"\ninvalid: Tr0ub4dor";
        let out = redact(text, message);
        assert!(!out.contains("Tr0ub"), "{out}");
    }

    #[test]
    fn a_misspelt_secret_key_and_a_wrong_type_are_hidden_too() {
        let text = "[env.p]\nexternl_id = \"s3cr3t-value\"\n[env.q]\nexternal_id = 123456\n";
        let out = redact(text, "unknown field externl_id = \"s3cr3t-value\"; invalid type: integer `123456`");
        assert!(!out.contains("s3cr3t") && !out.contains("123456"), "{out}");
    }

    #[test]
    fn a_broken_line_that_mentions_a_secret_is_not_quoted() {
        let text = "[env.p]\nexternal_id = \"Tr0ub4dor-and-3\nregion = \"x\"\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let out = redact(text, &e.to_string());
        assert!(!out.contains("Tr0ub4dor") && out.contains(HIDDEN), "{out}");
    }

    #[test]
    fn other_values_are_left_as_they_are() {
        let text = "[env.p]\nbucket = \"my bucket\"\n";
        assert_eq!(redact(text, "bucket = \"my bucket\""), "bucket = \"my bucket\"");
    }
}
