//! What the CodeDeploy agent's YAML reader makes of an appspec.
//!
//! The agent calls `YAML.load`, which on current AMIs (Ruby ≥ 3.1: Amazon
//! Linux 2023, Ubuntu 24.04) is Psych 4's safe load: YAML 1.1 scalars
//! (`0644` is octal 420, `0e0` a string, `yes` true, `1:30` base 60), and
//! aliases, dates, times and Ruby object tags refused. serde_yaml_ng reads
//! YAML 1.2 and cannot tell `0e0` from `0.0`, so the checks read this view
//! instead: each scalar resolved by Psych's rules from its own text, with
//! the line it is on.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// A value as Ruby sees it after `YAML.load`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A Ruby symbol (`:name`); not equal to any string.
    Sym(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A value, where it is, and how it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    /// 1-based line.
    pub line: usize,
    /// The scalar's text as written, for plain (unquoted) scalars.
    pub plain: Option<String>,
    /// Written in quotes or as a block scalar.
    pub quoted: bool,
}

impl Node {
    /// The value under string key `key`, as Ruby's `hash['key']` finds it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => {
                entries.iter().rev().find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The value as written, for messages.
    pub(crate) fn shown(&self) -> String {
        if let Some(p) = &self.plain {
            return p.clone();
        }
        match &self.value {
            Value::Str(s) => format!("\"{s}\""),
            Value::Seq(_) => "[…]".into(),
            Value::Map(_) => "{…}".into(),
            other => ruby_to_s(other).unwrap_or_default(),
        }
    }

    /// Absent to the agent: `nil`, or `false` where it writes `x || default`.
    pub(crate) fn is_nil(&self) -> bool {
        self.value == Value::Null
    }
}

/// Ruby's `to_s` of a scalar; `None` for collections.
pub(crate) fn ruby_to_s(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "NaN".into(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        Value::Float(f) => f.to_string(),
        Value::Str(s) | Value::Sym(s) => s.clone(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// Why the agent's YAML reader refuses the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// 1-based line.
    pub line: usize,
    /// Cause and fix.
    pub message: String,
}

/// The first document of `text` as Psych 4 loads it (`None` when there is
/// none), or why it refuses.
pub(crate) fn load(text: &str) -> Result<Option<Node>, Refusal> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<(Node, Option<Node>)> = Vec::new();
    loop {
        let (event, mark) = parser.next_token().map_err(|e| Refusal {
            line: e.marker().line(),
            message: format!("not valid YAML to the agent's reader: {}.", e.info()),
        })?;
        let line = mark.line();
        let node = match event {
            Event::StreamEnd => return Ok(None),
            Event::Alias(_) => {
                return Err(Refusal {
                    line,
                    message: "YAML aliases (`*name`) are refused by the agent's YAML reader on current AMIs (Ruby ≥ 3.1, \
                              Psych 4: \"Unknown alias\"), at BeforeInstall on every instance. Write the value out \
                              where the alias is."
                        .into(),
                });
            }
            Event::Scalar(text, style, _, tag) => {
                let plain = style == TScalarStyle::Plain;
                let value = match tag {
                    Some(tag) => tagged(&tag.handle, &tag.suffix, &text, line)?,
                    None if plain => resolve(&text, line)?,
                    None => Value::Str(text.clone()),
                };
                Node { value, line, plain: plain.then_some(text), quoted: !plain }
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                if let Some(tag) = tag {
                    collection_tag(&tag.handle, &tag.suffix, line)?;
                }
                let value = if matches!(event, Event::SequenceStart(..)) { Value::Seq(vec![]) } else { Value::Map(vec![]) };
                stack.push((Node { value, line, plain: None, quoted: false }, None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().expect("the parser balances collections").0,
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => continue,
        };
        match stack.last_mut() {
            None => return Ok(Some(node)),
            Some((Node { value: Value::Seq(items), .. }, _)) => items.push(node),
            Some((Node { value: Value::Map(entries), .. }, pending)) => match pending.take() {
                None => {
                    if node.plain.as_deref() == Some("<<") {
                        return Err(Refusal {
                            line: node.line,
                            message: "a merge key (`<<:`) only saves typing through an alias, which the agent's YAML \
                                      reader refuses on current AMIs (Psych 4); ferry refuses every merge key. Write \
                                      the keys out in full."
                                .into(),
                        });
                    }
                    *pending = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
            Some(_) => unreachable!("only collections are pushed"),
        }
    }
}

fn tagged(handle: &str, suffix: &str, text: &str, line: usize) -> Result<Value, Refusal> {
    let core = handle == "tag:yaml.org,2002:";
    Ok(match (core, suffix) {
        (true, "str" | "binary") | (false, "") => Value::Str(text.to_string()),
        (true, "int" | "float" | "bool" | "null") => match (suffix, resolve(text, line)?) {
            ("float", Value::Int(i)) => Value::Float(i as f64),
            (_, v) => v,
        },
        (false, s) if !s.starts_with("ruby/") => resolve(text, line)?,
        _ => return Err(refused_tag(handle, suffix, line)),
    })
}

fn collection_tag(handle: &str, suffix: &str, line: usize) -> Result<(), Refusal> {
    let core = handle == "tag:yaml.org,2002:";
    match (core, suffix) {
        (true, "map" | "seq") => Ok(()),
        (false, s) if !s.starts_with("ruby/") => Ok(()),
        _ => Err(refused_tag(handle, suffix, line)),
    }
}

fn refused_tag(handle: &str, suffix: &str, line: usize) -> Refusal {
    let shown = if handle == "tag:yaml.org,2002:" { format!("!!{suffix}") } else { format!("{handle}{suffix}") };
    Refusal {
        line,
        message: format!(
            "the tag `{shown}` makes a Ruby object the agent's YAML reader refuses on current AMIs (Psych 4 loads only \
             strings, numbers, booleans, lists and mappings), at BeforeInstall on every instance. Remove the tag."
        ),
    }
}

/// A plain scalar as Psych's ScalarScanner resolves it.
fn resolve(s: &str, line: usize) -> Result<Value, Refusal> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    if stringy(s) || s.contains('\n') {
        if s.len() > 5 || !s.starts_with(|c: char| "ytonf~YTONF".contains(c)) {
            return Ok(Value::Str(s.into()));
        }
        let l = s.to_ascii_lowercase();
        return Ok(match l.as_str() {
            "~" | "null" => Value::Null,
            "yes" | "true" | "on" => Value::Bool(true),
            "no" | "false" | "off" => Value::Bool(false),
            _ => Value::Str(s.into()),
        });
    }
    if is_timestamp(s) || is_date(s) {
        return Err(Refusal {
            line,
            message: format!(
                "`{s}` is a date or time to YAML 1.1, and the agent's YAML reader on current AMIs (Ruby ≥ 3.1, Psych 4) \
                 refuses dates and times (\"Tried to load unspecified class\"), at BeforeInstall on every instance. \
                 Quote it: \"{s}\"."
            ),
        });
    }
    let l = s.to_ascii_lowercase();
    if l == ".inf" || l == "+.inf" {
        return Ok(Value::Float(f64::INFINITY));
    }
    if l == "-.inf" {
        return Ok(Value::Float(f64::NEG_INFINITY));
    }
    if l == ".nan" {
        return Ok(Value::Float(f64::NAN));
    }
    if s.len() > 1 && s.starts_with(':') {
        let name = &s[1..];
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| name.strip_prefix(*q).and_then(|r| r.split_once(*q)).map(|(inner, _)| inner))
            .unwrap_or(name);
        return Ok(Value::Sym(unquoted.trim_start_matches(':').into()));
    }
    if let Some(v) = sexagesimal(s) {
        return Ok(v);
    }
    if is_float(s) {
        let t = s.strip_prefix(['-', '+']).unwrap_or(s);
        if t == "." {
            return Ok(Value::Str(s.into()));
        }
        let cleaned: String = s.chars().filter(|c| *c != ',' && *c != '_').collect();
        let cleaned = cleaned.replace(".e", "e").replace(".E", "E");
        let cleaned = cleaned.strip_suffix('.').unwrap_or(&cleaned);
        return Ok(Value::Float(cleaned.parse().unwrap_or(0.0)));
    }
    Ok(integer(s).map(Value::Int).unwrap_or_else(|| Value::Str(s.into())))
}

/// Psych's test that a scalar is obviously a string:
/// `/^[^\d.:-]?[[:alpha:]_\s!@#$%\^&*(){}<>|\/\\~;=]+/`.
fn stringy(s: &str) -> bool {
    let word = |c: char| c.is_alphabetic() || c == '_' || c.is_whitespace() || "!@#$%^&*(){}<>|/\\~;=".contains(c);
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    word(first) || (!first.is_ascii_digit() && !".:-".contains(first) && chars.next().is_some_and(word))
}

/// Digits only, at least `min` and at most `max` of them.
fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-M-D` that is a real calendar date (Psych leaves others strings).
fn is_date(s: &str) -> bool {
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else { return false };
    if !digits(y, 4, 4) || !digits(m, 1, 2) || !digits(d, 1, 2) {
        return false;
    }
    let (y, m, d): (u32, u32, u32) = (y.parse().unwrap_or(0), m.parse().unwrap_or(0), d.parse().unwrap_or(0));
    let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// A date followed by `T` or spaces and `H:MM:SS`: Psych's TIME.
fn is_timestamp(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let Some(split) = s.find(['T', 't', ' ', '\t']) else { return false };
    let (date, rest) = s.split_at(split);
    let mut d = date.splitn(3, '-');
    let date_ok = matches!((d.next(), d.next(), d.next()), (Some(y), Some(m), Some(dd)) if digits(y, 4, 4) && digits(m, 1, 2) && digits(dd, 1, 2));
    let time = rest.trim_start_matches(['T', 't']).trim_start();
    let mut t = time.splitn(3, ':');
    let time_ok = matches!((t.next(), t.next(), t.next()), (Some(h), Some(mm), Some(ss)) if digits(h, 1, 2) && digits(mm, 2, 2) && ss.get(..2).is_some_and(|s| digits(s, 2, 2)));
    date_ok && time_ok
}

/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}` (and a `.fraction`), summed as
/// Psych does: each part times 60 to the power |index − 2|.
fn sexagesimal(s: &str) -> Option<Value> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (body, frac) = match body.split_once('.') {
        Some((b, f)) if f.bytes().all(|c| c.is_ascii_digit() || c == b'_') => (b, Some(f)),
        Some(_) => return None,
        None => (body, None),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let head = parts[0];
    if !head.starts_with(|c: char| c.is_ascii_digit()) || !head.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    if !parts[1..].iter().all(|p| digits(p, 1, 2) && (p.len() == 1 || p.as_bytes()[0] <= b'5')) {
        return None;
    }
    let mut total: i128 = 0;
    for (i, p) in parts.iter().enumerate() {
        let n: i128 = p.replace('_', "").parse().ok()?;
        total = total.checked_add(n.checked_mul(60i128.checked_pow((i as u32).abs_diff(2))?)?)?;
    }
    let total = if neg { -total } else { total };
    Some(match frac {
        Some(_) => Value::Float(total as f64),
        None => Value::Int(total),
    })
}

/// Psych's FLOAT: `[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?`.
fn is_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let Some((int, rest)) = t.split_once('.') else { return false };
    let int_ok = int.is_empty()
        || (int.starts_with(|c: char| c.is_ascii_digit()) && int.bytes().all(|c| c.is_ascii_digit() || c == b'_' || c == b','));
    if !int_ok {
        return false;
    }
    let (frac, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    frac.bytes().all(|c| c.is_ascii_digit())
        && exp.is_none_or(|e| e.len() >= 2 && e.starts_with(['-', '+']) && e[1..].bytes().all(|c| c.is_ascii_digit()))
}

/// Psych's legacy INTEGER (binary, octal with a leading 0, decimal with `_`
/// or `,` between digits, hex), parsed as Ruby's `Integer()` does.
fn integer(s: &str) -> Option<i128> {
    let (neg, t) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let clean = |d: &str| d.chars().filter(|c| *c != '_' && *c != ',').collect::<String>();
    let seps_ok = |d: &str, ok: fn(u8) -> bool| !d.is_empty() && d.bytes().all(|c| ok(c) || c == b'_' || c == b',');
    let n = if let Some(d) = t.strip_prefix("0b") {
        if !seps_ok(d, |c| c == b'0' || c == b'1') {
            return None;
        }
        i128::from_str_radix(&clean(d), 2).ok()?
    } else if let Some(d) = t.strip_prefix("0x") {
        if !seps_ok(d, |c| c.is_ascii_hexdigit()) {
            return None;
        }
        i128::from_str_radix(&clean(d), 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        if !seps_ok(&t[1..], |c| (b'0'..=b'7').contains(&c)) {
            return None;
        }
        let d = clean(&t[1..]);
        if d.is_empty() { 0 } else { i128::from_str_radix(&d, 8).ok()? }
    } else {
        // `0|[1-9](?:[0-9]|,[0-9]|_[0-9])*`: a separator only between digits.
        let b = t.as_bytes();
        let ok = t == "0"
            || (!b.is_empty()
                && (b'1'..=b'9').contains(&b[0])
                && b.windows(2).all(|w| w[1].is_ascii_digit() || ((w[1] == b'_' || w[1] == b',') && w[0].is_ascii_digit()))
                && b.last().is_some_and(u8::is_ascii_digit));
        if !ok {
            return None;
        }
        clean(t).parse().ok()?
    };
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(s: &str) -> Result<Value, Refusal> {
        resolve(s, 1)
    }

    #[test]
    fn scalars_resolve_as_yaml_1_1_does() {
        assert_eq!(scalar("0644"), Ok(Value::Int(420)));
        assert_eq!(scalar("644"), Ok(Value::Int(644)));
        assert_eq!(scalar("08"), Ok(Value::Str("08".into())));
        assert_eq!(scalar("0e0"), Ok(Value::Str("0e0".into())));
        assert_eq!(scalar("0.0"), Ok(Value::Float(0.0)));
        assert_eq!(scalar("0."), Ok(Value::Float(0.0)));
        assert_eq!(scalar(".0"), Ok(Value::Float(0.0)));
        assert_eq!(scalar("1.0e3"), Ok(Value::Str("1.0e3".into())));
        assert_eq!(scalar("1.0e+3"), Ok(Value::Float(1000.0)));
        assert_eq!(scalar("0x1F"), Ok(Value::Int(31)));
        assert_eq!(scalar("0b11"), Ok(Value::Int(3)));
        assert_eq!(scalar("0o7"), Ok(Value::Str("0o7".into())));
        assert_eq!(scalar("1_000"), Ok(Value::Int(1000)));
        assert_eq!(scalar("1,000"), Ok(Value::Int(1000)));
        assert_eq!(scalar("0_0"), Ok(Value::Int(0)));
        assert_eq!(scalar("1:30"), Ok(Value::Int(5400)));
        assert_eq!(scalar("yes"), Ok(Value::Bool(true)));
        assert_eq!(scalar("Off"), Ok(Value::Bool(false)));
        assert_eq!(scalar("n"), Ok(Value::Str("n".into())));
        assert_eq!(scalar("~"), Ok(Value::Null));
        assert_eq!(scalar(":root"), Ok(Value::Sym("root".into())));
        assert_eq!(scalar("scripts/a.sh"), Ok(Value::Str("scripts/a.sh".into())));
        assert_eq!(scalar("u+rwx"), Ok(Value::Str("u+rwx".into())));
        assert_eq!(scalar("2024-13-45"), Ok(Value::Str("2024-13-45".into())));
        assert!(scalar("2024-01-01").is_err());
        assert!(scalar("2024-1-1").is_err());
        assert!(scalar("2024-01-01 10:00:00").is_err());
        assert!(scalar("2024-01-01T10:00:00Z").is_err());
    }

    #[test]
    fn aliases_merge_keys_and_object_tags_are_refused_and_anchors_are_not() {
        assert!(load("a: &x 1\nb: *x\n").unwrap_err().message.contains("alias"));
        assert!(load("a:\n  <<: {b: 1}\n").unwrap_err().message.contains("merge key"));
        assert!(load("a: !ruby/object:Foo {}\n").unwrap_err().message.contains("!ruby/object:Foo"));
        let doc = load("a: &x 1\nb: !!str 2\nc: '0.0'\n").unwrap().unwrap();
        assert_eq!(doc.get("a").unwrap().value, Value::Int(1));
        assert_eq!(doc.get("b").unwrap().value, Value::Str("2".into()));
        let c = doc.get("c").unwrap();
        assert!(c.quoted && c.plain.is_none() && c.line == 3, "{c:?}");
    }
}
