//! TTY renderer: indicatif bars for the upload and the deployment's
//! instances, with event lines printed above them.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Outcome, Reporter, describe, receipt_line};

/// Renders to an interactive terminal.
pub struct TtyReporter {
    multi: MultiProgress,
    bars: Mutex<Bars>,
    color: bool,
}

#[derive(Default)]
struct Bars {
    upload: Option<ProgressBar>,
    deploy: Option<ProgressBar>,
}

impl TtyReporter {
    /// Draws on stderr. Honours `NO_COLOR`.
    pub fn new() -> TtyReporter {
        TtyReporter {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(Bars::default()),
            color: !crate::jenkins::BuildEnv::current().no_color,
        }
    }

    fn line(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    fn paint(&self, text: String, code: &str) -> String {
        if self.color { format!("\u{1b}[{code}m{text}\u{1b}[0m") } else { text }
    }
}

impl Default for TtyReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for TtyReporter {
    fn report(&self, event: &Event) {
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
            Event::DeploymentStatus { status, overview, .. } => {
                let total = overview.total().max(1) as u64;
                let done = (overview.succeeded + overview.failed + overview.skipped) as u64;
                let bar = bars.deploy.get_or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(total));
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {msg} [{bar:30}] {pos}/{len} instances {elapsed}")
                            .expect("static template")
                            .progress_chars("=> "),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(status.clone());
            }
            Event::Finished { .. } | Event::Error { .. } => {
                if let Some(bar) = bars.deploy.take() {
                    bar.finish_and_clear();
                }
                if let Some(bar) = bars.upload.take() {
                    bar.finish_and_clear();
                }
            }
            Event::Receipt(r) => {
                println!("{}", receipt_line(r));
                return;
            }
            Event::BundleWritten { .. } | Event::Staged { .. } => {
                if let Some(line) = super::result_line(event) {
                    println!("{line}");
                }
                return;
            }
            Event::HistoryEntry(h) => {
                println!("{}", super::plain::sanitize(&super::history_line(h)));
                return;
            }
            _ => {}
        }
        drop(bars);
        if let Some(text) = describe(event) {
            let text = match event {
                Event::Error { .. } | Event::LifecycleFailed { .. } | Event::Check { ok: false, .. } => self.paint(text, "31"),
                Event::Warning { .. } => self.paint(text, "33"),
                Event::Finished { outcome: Outcome::Succeeded, .. } => self.paint(text, "32"),
                Event::Finished { .. } => self.paint(text, "31;1"),
                _ => text,
            };
            self.line(&text);
        }
    }
}
