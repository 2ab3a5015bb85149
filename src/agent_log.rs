//! The CodeDeploy agent's `logTail`, decoded.
//!
//! Data layer. The real agent writes a failed hook's diagnostics log as
//! header lines naming the lifecycle event and each script, then the
//! script's output with every line prefixed by the stream it came from:
//!
//! ```text
//! LifecycleEvent - AfterInstall
//! Script - scripts/migrate.sh
//! [stdout]migrating
//! [stderr]boom
//! ```
//!
//! and keeps only the end of it, so the first line may be cut anywhere.
//! Renderers show the script once and the streams apart; the JUnit report
//! puts them in `system-out` and `system-err`.

/// Where a line of hook output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// `[stdout]`.
    Stdout,
    /// `[stderr]`.
    Stderr,
    /// No prefix: a line cut by the agent's truncation, or a tail that is
    /// not in the agent's format at all.
    Unknown,
}

/// One line of a decoded log tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `LifecycleEvent - NAME`.
    LifecycleEvent(String),
    /// `Script - PATH`: the output lines after it are this script's.
    Script(String),
    /// Output of the current script.
    Output(Stream, String),
}

/// Decodes a `logTail`; every line of it comes back, none is dropped.
pub fn decode(tail: &str) -> Vec<Line> {
    tail.lines()
        .map(|line| {
            if let Some(name) = line.strip_prefix("LifecycleEvent - ") {
                Line::LifecycleEvent(name.to_string())
            } else if let Some(path) = line.strip_prefix("Script - ") {
                Line::Script(path.to_string())
            } else if let Some(text) = line.strip_prefix("[stdout]") {
                Line::Output(Stream::Stdout, text.to_string())
            } else if let Some(text) = line.strip_prefix("[stderr]") {
                Line::Output(Stream::Stderr, text.to_string())
            } else {
                Line::Output(Stream::Unknown, line.to_string())
            }
        })
        .collect()
}

/// The output lines as `--output json` carries them beside the raw tail:
/// `[{"script": PATH or null, "stream": "stdout"|"stderr"|"unknown",
/// "text": LINE}, …]`, each line with the script it came from.
pub fn output_json(tail: &str) -> serde_json::Value {
    let mut script: Option<String> = None;
    let mut out = Vec::new();
    for line in decode(tail) {
        match line {
            Line::LifecycleEvent(_) => {}
            Line::Script(path) => script = Some(path),
            Line::Output(stream, text) => {
                let stream = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                    Stream::Unknown => "unknown",
                };
                out.push(serde_json::json!({ "script": script, "stream": stream, "text": text }));
            }
        }
    }
    serde_json::Value::Array(out)
}

/// The output lines of one stream, in order (for JUnit's system-out/err).
pub fn stream(tail: &str, which: Stream) -> String {
    decode(tail)
        .into_iter()
        .filter_map(|l| match l {
            Line::Output(s, text) if s == which || (which == Stream::Stdout && s == Stream::Unknown) => Some(text),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_names_each_lines_script_and_stream() {
        let v = output_json("cut\nLifecycleEvent - AfterInstall\nScript - a.sh\n[stdout]x\n[stderr]y");
        assert_eq!(
            v,
            serde_json::json!([
                { "script": null, "stream": "unknown", "text": "cut" },
                { "script": "a.sh", "stream": "stdout", "text": "x" },
                { "script": "a.sh", "stream": "stderr", "text": "y" },
            ])
        );
    }

    const TAIL: &str =
        "LifecycleEvent - AfterInstall\nScript - scripts/migrate.sh\n[stdout]migrating\n[stderr]boom\n[stdout]done";

    #[test]
    fn the_agents_format_decodes_into_event_script_and_streams() {
        assert_eq!(
            decode(TAIL),
            vec![
                Line::LifecycleEvent("AfterInstall".into()),
                Line::Script("scripts/migrate.sh".into()),
                Line::Output(Stream::Stdout, "migrating".into()),
                Line::Output(Stream::Stderr, "boom".into()),
                Line::Output(Stream::Stdout, "done".into()),
            ]
        );
    }

    #[test]
    fn a_line_cut_by_truncation_is_kept_not_dropped() {
        let d = decode("ut]half a line\n[stderr]boom");
        assert_eq!(d[0], Line::Output(Stream::Unknown, "ut]half a line".into()));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn streams_are_told_apart() {
        assert_eq!(stream(TAIL, Stream::Stdout), "migrating\ndone");
        assert_eq!(stream(TAIL, Stream::Stderr), "boom");
    }
}
