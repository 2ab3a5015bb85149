//! TTY renderer: indicatif bars for the upload, and a live board for the
//! deployment, with event lines printed above them.
//!
//! The board, as nextest shows running tests: one row per instance in
//! flight (instance, current lifecycle event, a bar through its events,
//! elapsed), finished instances folding into the counter on the totals line,
//! a failed instance pinned with its event and error, and the deployment's
//! totals last. Fleets taller than the terminal show as many rows as fit and
//! count the rest. Only fleets that watch follows per instance (up to 50)
//! have rows; larger ones show the totals line alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::hooks::HookOutputs;
use super::{Event, Outcome, Reporter, Tone, describe};

/// Renders to an interactive terminal.
pub struct TtyReporter {
    multi: MultiProgress,
    bars: Mutex<Bars>,
    color: bool,
    /// Instance rows the terminal has room for.
    max_rows: usize,
    /// Hook output held back to show each distinct output once (not in a
    /// wave, whose sections print each failure whole).
    hooks: Mutex<HookOutputs>,
    /// `ferry history`'s column header was written.
    history_header: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Bars {
    upload: Option<ProgressBar>,
    /// The board: instance rows above the deployment's totals, drawn as one
    /// bar so rows and totals can never be redrawn out of step.
    deploy: Option<ProgressBar>,
    /// Instance → its row, while in flight (or pinned after failing).
    rows: BTreeMap<String, Row>,
    /// Instances in flight that have no row for want of room.
    unshown: BTreeSet<String>,
    /// Blue/green: each instance's environment, shown beside its id.
    labels: BTreeMap<String, String>,
    /// Instances that finished, by how.
    succeeded: u64,
    failed: u64,
    skipped: u64,
    /// CodeDeploy's status word for the totals line.
    status: String,
    /// A wave's environments: each one's live line (drawn in the order they began).
    sections: BTreeMap<String, ProgressBar>,
}

struct Row {
    event: String,
    status: String,
    position: u32,
    total: u32,
    started: Instant,
    /// `✗ EVENT CODE` once the instance failed: the row then stays.
    failure: Option<String>,
}

/// Width of a row's bar through the instance's lifecycle events.
const ROW_BAR: usize = 14;

impl TtyReporter {
    /// Draws on stderr. Honours `NO_COLOR`.
    pub fn new() -> TtyReporter {
        let height = rustix::termios::tcgetwinsize(std::io::stderr()).map(|w| w.ws_row as usize).unwrap_or(24);
        TtyReporter {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(Bars::default()),
            color: !crate::jenkins::BuildEnv::current().no_color,
            // Room for the lines printed above, the upload bar and the totals.
            max_rows: height.saturating_sub(8).max(3),
            hooks: Mutex::new(HookOutputs::default()),
            history_header: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The live line of a wave environment's section, made at its first event.
    fn section(&self, env: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.sections
            .entry(env.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix:<14} {wide_msg} {elapsed:>4}").expect("static template"),
                );
                bar.set_prefix(format!("[{}]", super::one_line(env)));
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn line(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    fn paint(&self, text: String, code: &str) -> String {
        if self.color { format!("\u{1b}[{code}m{text}\u{1b}[0m") } else { text }
    }

    /// `text` in the colour of `tone`.
    fn tone(&self, text: String, tone: Tone) -> String {
        match tone.sgr() {
            Some(code) => self.paint(text, code),
            None => text,
        }
    }

    fn totals_message(bars: &Bars) -> String {
        let mut m = bars.status.clone();
        m.push_str(&format!(" · {} done", bars.succeeded));
        if bars.failed > 0 {
            m.push_str(&format!(", {} failed", bars.failed));
        }
        if bars.skipped > 0 {
            m.push_str(&format!(", {} skipped", bars.skipped));
        }
        if !bars.unshown.is_empty() {
            m.push_str(&format!(", {} more in flight", bars.unshown.len()));
        }
        m
    }

    fn row_line(&self, target: &str, row: &Row) -> String {
        if let Some(failure) = &row.failure {
            return format!("  {target:<22} {}", self.paint(failure.clone(), "31"));
        }
        let total = row.total.max(1) as usize;
        let filled = (row.position as usize).min(total) * ROW_BAR / total;
        let bar: String = (0..ROW_BAR)
            .map(|i| {
                if i < filled {
                    '='
                } else if i == filled {
                    '>'
                } else {
                    ' '
                }
            })
            .collect();
        let elapsed = row.started.elapsed().as_secs();
        format!(
            "  {target:<22} {:<28} [{bar}] {}/{} {elapsed}s",
            format!("{} {}", row.event, row.status),
            row.position,
            row.total
        )
    }

    /// Redraws the board after its state changed.
    fn redraw(&self, bars: &Bars) {
        let Some(board) = &bars.deploy else { return };
        let name = |t: &String| bars.labels.get(t).map_or(t.clone(), |l| format!("{t} {l}"));
        let rows: Vec<String> = bars.rows.iter().map(|(t, r)| self.row_line(&name(t), r)).collect();
        let totals = "  {spinner} {msg} [{bar:30}] {pos}/{len} instances {elapsed}";
        let template = if rows.is_empty() { totals.to_string() } else { format!("{{prefix}}\n{totals}") };
        board.set_style(ProgressStyle::with_template(&template).expect("board template").progress_chars("=> "));
        board.set_prefix(rows.join("\n"));
        board.set_message(Self::totals_message(bars));
    }

    /// Updates the board; returns whether the event is fully rendered by it
    /// (no line printed above).
    fn board(&self, bars: &mut Bars, event: &Event) -> bool {
        let shown = match event {
            Event::DeploymentStatus { status, overview, .. } => {
                let total = overview.total().max(1) as u64;
                let done = (overview.succeeded + overview.failed + overview.skipped) as u64;
                let bar = bars.deploy.get_or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(total));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_length(total);
                bar.set_position(done);
                bars.status = status.clone();
                false
            }
            Event::TargetEventChanged { target_id, lifecycle_event, status, position, events_total, .. } => {
                if !bars.rows.contains_key(target_id) && bars.rows.len() >= self.max_rows {
                    bars.unshown.insert(target_id.clone());
                } else {
                    let row = bars.rows.entry(target_id.clone()).or_insert_with(|| Row {
                        event: String::new(),
                        status: String::new(),
                        position: 0,
                        total: *events_total,
                        started: Instant::now(),
                        failure: None,
                    });
                    let finished = status != "InProgress";
                    row.position = if finished { *position } else { position.saturating_sub(1) };
                    row.total = *events_total;
                    row.event = lifecycle_event.clone();
                    row.status = status.clone();
                }
                // Rows replace the per-event lines on a terminal.
                true
            }
            Event::LifecycleFailed { target_id, lifecycle_event, error_code, .. } => {
                if let Some(row) = bars.rows.get_mut(target_id) {
                    row.failure = Some(format!("✗ {lifecycle_event} {}", error_code.as_deref().unwrap_or("failed")));
                }
                false
            }
            Event::TargetFinished { target_id, status, .. } => {
                match status.as_str() {
                    "Failed" => bars.failed += 1,
                    "Skipped" => bars.skipped += 1,
                    _ => bars.succeeded += 1,
                }
                bars.unshown.remove(target_id);
                // A failed row stays pinned; the others fold into the counter.
                if status != "Failed" {
                    bars.rows.remove(target_id);
                }
                true
            }
            Event::TargetSkipped { .. } => true,
            Event::TargetLabelled { target_id, label, .. } => {
                bars.labels.insert(target_id.clone(), label.clone());
                true
            }
            // The alias's row carries its traffic; the line above says it too.
            Event::TrafficShifted { function, alias, target_version, target_percent, .. } => {
                let share = format!("v{target_version} {}%", super::percent(*target_percent));
                bars.labels.insert(format!("{function}:{alias}"), share);
                false
            }
            // The service's row carries the replacement's share.
            Event::TaskSetTraffic { target_id, replacement_percent, .. } => {
                bars.labels.insert(target_id.clone(), format!("replacement {}%", super::percent(*replacement_percent)));
                false
            }
            _ => return false,
        };
        self.redraw(bars);
        shown
    }

    fn clear_board(&self, bars: &mut Bars) {
        bars.rows.clear();
        bars.unshown.clear();
        bars.labels.clear();
        if let Some(bar) = bars.deploy.take() {
            bar.finish_and_clear();
        }
        (bars.succeeded, bars.failed, bars.skipped) = (0, 0, 0);
    }
}

impl TtyReporter {
    /// Prints the hook output held back, if any, above the board.
    fn release_hook_output(&self) {
        let held = self.hooks.lock().unwrap_or_else(|e| e.into_inner()).release();
        if let Some(text) = held {
            self.line(&super::plain::sanitize(&text));
        }
    }
}

impl Drop for TtyReporter {
    /// Hook output still held when the command ends is shown before it exits.
    fn drop(&mut self) {
        self.release_hook_output();
    }
}

impl Default for TtyReporter {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes a command's result on stdout; a closed pipe (`ferry history | head`)
/// ends the output quietly instead of panicking like `println!`.
fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

impl Reporter for TtyReporter {
    /// In a wave, several deployments run at once and one live board would
    /// mix their instances. Each environment gets a section of its own
    /// instead: one live line at the bottom (its latest step, instance or
    /// status, with a spinner while it works), and its lasting events
    /// (upload, deployment created, failures, outcome, rollback, abort)
    /// printed above, led by `[ENV] `. Results go to stdout as alone.
    fn report_in(&self, env: &str, event: &Event) {
        if let Event::HistoryEntry(_) = event
            && !self.history_header.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.line(&super::history_header(true));
        }
        if let Some(lines) = super::result_lines(event, Some(env)) {
            lines.iter().for_each(|l| stdout_line(l));
            return;
        }
        let section = self.section(env);
        let live = |text: &str| section.set_message(super::plain::sanitize(text.lines().next().unwrap_or_default()));
        match event {
            Event::UploadProgress { sent, total } => {
                let pct = if *total == 0 { 100 } else { sent * 100 / total };
                live(&format!("uploading {pct}% of {}", super::human_bytes(*total)));
                return;
            }
            Event::TargetFinished { .. } | Event::TargetLabelled { .. } | Event::SessionPlanned { .. } => return,
            // Fleet progress: the section's line, not a line of its own.
            Event::DeploymentStatus { .. } | Event::TargetEventChanged { .. } | Event::TargetSkipped { .. } => {
                if let Some(text) = describe(event) {
                    live(text.trim_start());
                }
                return;
            }
            Event::Finished { outcome, .. } => {
                section.disable_steady_tick();
                let word = match outcome {
                    Outcome::Succeeded => self.paint("✓ succeeded".into(), "32"),
                    Outcome::Created => "created".into(),
                    _ => self.paint(format!("✗ {}", describe(event).unwrap_or_default().split(':').next().unwrap_or("")), "31;1"),
                };
                section.set_message(word);
            }
            Event::Error { .. } => {
                section.disable_steady_tick();
                section.set_message(self.paint("✗ error (above)".into(), "31"));
            }
            _ => {
                if let Some(text) = describe(event) {
                    live(&text);
                }
            }
        }
        if let Some(text) = describe(event) {
            let text = super::plain::sanitize(&text);
            let prefix = format!("[{}] ", super::one_line(env));
            let text = text.lines().map(|l| format!("{prefix}{l}")).collect::<Vec<_>>().join("\n");
            self.line(&self.tone(text, Tone::of(event)));
        }
    }

    fn report(&self, event: &Event) {
        if !HookOutputs::same_read(event) {
            self.release_hook_output();
        }
        if let Event::HistoryEntry(_) = event
            && !self.history_header.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // On stderr, so a script reading stdout gets the rows alone.
            self.line(&super::history_header(false));
        }
        if let Some(lines) = super::result_lines(event, None) {
            lines.iter().for_each(|l| stdout_line(l));
            return;
        }
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::UploadStarted { size, .. } => {
                let bar = self.multi.add(ProgressBar::new(*size));
                bar.set_style(
                    ProgressStyle::with_template("  upload [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                bars.upload = Some(bar);
            }
            Event::UploadProgress { sent, .. } => {
                if let Some(bar) = &bars.upload {
                    bar.set_position(*sent);
                }
                return;
            }
            Event::Uploaded { .. } => {
                if let Some(bar) = bars.upload.take() {
                    bar.finish_and_clear();
                }
            }
            Event::Finished { .. } | Event::Error { .. } => {
                self.clear_board(&mut bars);
                if let Some(bar) = bars.upload.take() {
                    bar.finish_and_clear();
                }
            }
            Event::WaveFinished { .. } => {
                // The live lines become the wave's summary, one line per
                // environment: a redraw of the bars is rate-limited and may
                // not come again before ferry exits.
                let sections = std::mem::take(&mut bars.sections);
                drop(bars);
                for (env, section) in sections {
                    let last = section.message();
                    section.finish_and_clear();
                    self.line(&format!("  [{}] {last}", super::one_line(&env)));
                }
                if let Some(text) = describe(event) {
                    self.line(&super::plain::sanitize(&text));
                }
                return;
            }
            _ => {
                if self.board(&mut bars, event) {
                    return;
                }
            }
        }
        drop(bars);
        let failure = self.hooks.lock().unwrap_or_else(|e| e.into_inner()).failure(event);
        if let Some(line) = failure {
            self.line(&self.tone(super::plain::sanitize(&line), Tone::Bad));
            return;
        }
        if let Some(text) = describe(event) {
            // Hook output and AWS messages reach the terminal as text only:
            // an escape sequence in them must not move the cursor or retitle
            // the window. ferry's own colour is added after.
            let text = super::plain::sanitize(&text);
            self.line(&self.tone(text, Tone::of(event)));
        }
    }
}
