//! JSON renderer: one object per event per line on stdout, each with a `ts`
//! field, for tools that drive ferry. Field names are documented in
//! docs/output.md and only ever added to.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

/// Writes newline-delimited JSON.
pub struct JsonReporter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl JsonReporter {
    /// Events to the process's stdout.
    pub fn stdout() -> JsonReporter {
        JsonReporter::new(Box::new(std::io::stdout()))
    }

    /// Events to stderr, for commands whose stdout is their product.
    pub fn stderr() -> JsonReporter {
        JsonReporter::new(Box::new(std::io::stderr()))
    }

    /// Events to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> JsonReporter {
        JsonReporter { out: Mutex::new(out) }
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: &Event) {
        let mut value = match serde_json::to_value(event) {
            Ok(v) => v,
            Err(_) => return,
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert("ts".into(), serde_json::Value::String(super::plain::timestamp()));
            // The hook's output decoded, next to the agent's raw logTail.
            if let Event::LifecycleFailed { log_tail: Some(tail), .. } = event {
                obj.insert("output".into(), crate::agent_log::output_json(tail));
            }
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }
}
