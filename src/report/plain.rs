//! Plain renderer: one timestamped line per event, no ANSI, no carriage
//! returns, so a Jenkins console log reads cleanly and greps well.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::hooks::HookOutputs;
use super::{Event, Reporter, describe};

/// Upload progress is a line at most this often; a log is not a progress bar.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Writes timestamped lines to stderr (results to stdout).
pub struct PlainReporter {
    state: Mutex<State>,
}

struct State {
    err: Box<dyn Write + Send>,
    out: Box<dyn Write + Send>,
    /// When upload progress was last printed, per wave environment ("" alone).
    last_progress: HashMap<String, Instant>,
    /// Last deployment status line per wave environment ("" alone): status
    /// word and when it was printed.
    last_status: HashMap<String, (String, Instant)>,
    /// Hook output held back per wave environment ("" alone), to show each
    /// distinct output once.
    hooks: HashMap<String, HookOutputs>,
    /// `ferry history`'s column header was written.
    history_header: bool,
}

impl PlainReporter {
    /// Lines to the process's stderr, results to stdout.
    pub fn stderr() -> PlainReporter {
        PlainReporter::new(Box::new(std::io::stderr()), Box::new(std::io::stdout()))
    }

    /// Lines to `err`, results to `out` (tests use buffers).
    pub fn new(err: Box<dyn Write + Send>, out: Box<dyn Write + Send>) -> PlainReporter {
        PlainReporter {
            state: Mutex::new(State {
                err,
                out,
                last_progress: HashMap::new(),
                last_status: HashMap::new(),
                hooks: HashMap::new(),
                history_header: false,
            }),
        }
    }
}

/// `2026-11-27T21:40:01Z`, UTC so logs from agents in any zone line up.
pub(crate) fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).unwrap_or_default()
}

/// Strips anything that could move the cursor, colour the log or hide a
/// link in it: a hook's output is relayed verbatim otherwise. Escape
/// sequences of every kind (CSI, OSC such as OSC-8 hyperlinks, DCS) go by
/// `strip-ansi-escapes`' VT parser; any control character left (a lone ESC,
/// CR, BEL) is dropped after it.
pub(crate) fn sanitize(line: &str) -> String {
    // The parser keeps line feeds but drops tabs, which `ferry history`
    // separates its columns with: strip between them.
    let pieces: Vec<String> = line.split('\t').map(strip_ansi_escapes::strip_str).collect();
    pieces.join("\t").chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

impl Reporter for PlainReporter {
    fn report(&self, event: &Event) {
        self.render(None, event);
    }

    fn report_in(&self, env: &str, event: &Event) {
        self.render(Some(env), event);
    }
}

impl PlainReporter {
    /// One event; in a wave each line names its environment after the
    /// timestamp (`[prod-eu] `), so parallel deployments' lines can be told
    /// apart and grepped.
    fn render(&self, env: Option<&str>, event: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tag = env.map(|e| format!("[{}] ", super::one_line(e))).unwrap_or_default();
        let key = env.unwrap_or_default().to_string();
        if !HookOutputs::same_read(event) {
            let held = st.hooks.get_mut(&key).and_then(HookOutputs::release);
            if let Some(text) = held {
                st.lines(&tag, &text);
            }
        }
        if let Some(line) = st.hooks.entry(key.clone()).or_default().failure(event) {
            st.lines(&tag, &line);
            return;
        }
        if let Event::HistoryEntry(_) = event
            && !std::mem::replace(&mut st.history_header, true)
        {
            // Heads the rows on stdout, from stderr: a script reading stdout
            // gets the rows alone, a person (or a Jenkins log) sees both.
            let _ = writeln!(st.err, "{}", super::history_header(env.is_some()));
        }
        if let Some(lines) = super::result_lines(event, env) {
            for line in lines {
                let _ = writeln!(st.out, "{line}");
            }
            let _ = st.out.flush();
            return;
        }
        match event {
            Event::UploadProgress { sent, total } => {
                let due = st.last_progress.get(&key).is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
                if !due || sent >= total {
                    return;
                }
                st.last_progress.insert(key, Instant::now());
                let pct = if *total == 0 { 100 } else { sent * 100 / total };
                let line = format!(
                    "{} {tag}upload {pct}% ({} of {})",
                    timestamp(),
                    super::human_bytes(*sent),
                    super::human_bytes(*total)
                );
                let _ = writeln!(st.err, "{line}");
                return;
            }
            Event::DeploymentStatus { status, .. } => {
                // Counts on a big fleet change every poll; a log gets a new
                // status word at once, and counts every few seconds.
                let same_word_recently =
                    st.last_status.get(&key).is_some_and(|(word, at)| word == status && at.elapsed() < PROGRESS_EVERY);
                if same_word_recently {
                    return;
                }
                st.last_status.insert(key, (status.clone(), Instant::now()));
            }
            _ => {}
        }
        if let Some(text) = describe(event) {
            st.lines(&tag, &text);
        }
    }
}

impl State {
    /// `text`'s lines on stderr, sanitised, each timestamped and tagged.
    fn lines(&mut self, tag: &str, text: &str) {
        let ts = timestamp();
        for line in sanitize(text).lines() {
            let _ = writeln!(self.err, "{ts} {tag}{line}");
        }
        let _ = self.err.flush();
    }
}

impl Drop for PlainReporter {
    /// Hook output still held (the command ended in the read that found
    /// it) is shown before the process exits.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let held: Vec<(String, String)> =
            st.hooks.iter_mut().filter_map(|(env, h)| h.release().map(|t| (env.clone(), t))).collect();
        for (env, text) in held {
            let tag = if env.is_empty() { String::new() } else { format!("[{}] ", super::one_line(&env)) };
            st.lines(&tag, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::report::tests::Buf;

    #[test]
    fn plain_output_has_no_ansi_or_carriage_return_even_from_hook_output() {
        let (err, out) = (Buf::default(), Buf::default());
        let r = PlainReporter::new(Box::new(err.clone()), Box::new(out.clone()));
        for e in crate::report::tests::sample_events() {
            r.report(&e);
        }
        let text = err.text();
        assert!(text.contains("boom"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        for line in text.lines() {
            assert!(line.len() > 20 && line.as_bytes()[4] == b'-' && line.as_bytes()[19] == b'Z', "not timestamped: {line}");
        }
        assert_eq!(out.text(), "d-123\n", "stdout carries only the deployment id");
    }

    #[test]
    fn repeated_status_counts_are_rate_limited_but_new_status_words_are_not() {
        let (err, out) = (Buf::default(), Buf::default());
        let r = PlainReporter::new(Box::new(err.clone()), Box::new(out));
        let status = |word: &str, done: i64| Event::DeploymentStatus {
            deployment_id: "d-1".into(),
            status: word.into(),
            overview: crate::event::Overview { succeeded: done, pending: 100 - done, ..Default::default() },
        };
        for i in 0..50 {
            r.report(&status("InProgress", i));
        }
        r.report(&status("Succeeded", 100));
        let text = err.text();
        assert_eq!(text.lines().filter(|l| l.contains("InProgress")).count(), 1, "{text}");
        assert_eq!(text.lines().filter(|l| l.contains("Succeeded")).count(), 1, "{text}");
    }

    #[test]
    fn every_line_of_a_wave_environment_names_it_after_the_timestamp() {
        let (err, out) = (Buf::default(), Buf::default());
        let r = PlainReporter::new(Box::new(err.clone()), Box::new(out));
        let eu = crate::event::Tagged { inner: &r, env: "prod-eu".into() };
        let us = crate::event::Tagged { inner: &r, env: "prod-us".into() };
        let status = |id: &str| Event::DeploymentStatus {
            deployment_id: id.into(),
            status: "InProgress".into(),
            overview: Default::default(),
        };
        eu.report(&status("d-1"));
        // The other environment's status is not rate-limited away by the first's.
        us.report(&status("d-2"));
        eu.report(&Event::Finished {
            deployment_id: "d-1".into(),
            outcome: crate::event::Outcome::Failed,
            error: Some("boom".into()),
            overview: Default::default(),
            failed_instances: vec![],
            elapsed_ms: 1,
        });
        r.report(&Event::Warning { message: "alone".into() });
        let text = err.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("Z [prod-eu] deployment d-1 InProgress"), "{text}");
        assert!(lines[1].ends_with("Z [prod-us] deployment d-2 InProgress"), "{text}");
        assert!(
            lines[2].contains("Z [prod-eu] deployment d-1 FAILED") && lines[3].contains("Z [prod-eu]   reason: boom"),
            "{text}"
        );
        assert!(lines[4].ends_with("Z warning: alone"), "{text}");
    }

    #[test]
    fn identical_hook_output_of_two_instances_is_shown_once_before_the_next_skipped_instance() {
        let (err, out) = (Buf::default(), Buf::default());
        let r = PlainReporter::new(Box::new(err.clone()), Box::new(out));
        let failed = |t: &str| Event::LifecycleFailed {
            deployment_id: "d-1".into(),
            target_id: t.into(),
            lifecycle_event: "AfterInstall".into(),
            error_code: Some("ScriptFailed".into()),
            script_name: Some("s.sh".into()),
            message: None,
            log_tail: Some("[stderr]boom".into()),
        };
        r.report(&failed("i-1"));
        r.report(&Event::TargetEventChanged {
            deployment_id: "d-1".into(),
            target_id: "i-2".into(),
            lifecycle_event: "AfterInstall".into(),
            status: "Failed".into(),
            duration_ms: None,
            position: 5,
            events_total: 7,
        });
        r.report(&failed("i-2"));
        r.report(&Event::TargetSkipped { deployment_id: "d-1".into(), target_id: "i-3".into() });
        let text = err.text();
        let body: Vec<&str> = text.lines().map(|l| &l[21..]).collect();
        assert_eq!(
            body,
            [
                "instance i-1 failed AfterInstall [ScriptFailed] in s.sh",
                "  i-2 AfterInstall Failed",
                "instance i-2 failed AfterInstall [ScriptFailed] in s.sh",
                "    --- hook output of i-1, i-2 (last lines; ! = stderr) ---",
                "    ! boom",
                "  i-3 Skipped",
            ],
            "{text}"
        );
    }

    #[test]
    fn hook_output_held_when_the_command_ends_is_still_shown() {
        let err = Buf::default();
        let r = PlainReporter::new(Box::new(err.clone()), Box::new(Buf::default()));
        r.report(&Event::LifecycleFailed {
            deployment_id: "d-1".into(),
            target_id: "i-1".into(),
            lifecycle_event: "Install".into(),
            error_code: None,
            script_name: None,
            message: None,
            log_tail: Some("boom".into()),
        });
        drop(r);
        assert!(err.text().contains("    … boom"), "{}", err.text());
    }

    #[test]
    fn sanitize_removes_ansi_and_carriage_returns() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\r done"), "red done");
        assert_eq!(sanitize("a\tb\nc"), "a\tb\nc", "tabs and line feeds are kept");
    }

    #[test]
    fn sanitize_removes_osc8_hyperlinks_but_keeps_their_text() {
        let link = "see \u{1b}]8;;https://example.invalid/x\u{1b}\\the docs\u{1b}]8;;\u{1b}\\ now";
        assert_eq!(sanitize(link), "see the docs now");
        let bel = "\u{1b}]0;title\u{7}done";
        assert_eq!(sanitize(bel), "done");
    }
}
