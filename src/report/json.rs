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
        self.write(None, event);
    }

    fn report_in(&self, env: &str, event: &Event) {
        self.write(Some(env), event);
    }
}

impl JsonReporter {
    /// One line: the event, its `ts`, and in a wave its `env`.
    fn write(&self, env: Option<&str>, event: &Event) {
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
            if let Some(env) = env {
                obj.insert("env".into(), serde_json::Value::String(env.to_string()));
            }
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::Buf;

    #[test]
    fn an_event_of_a_wave_environment_carries_an_env_field_and_others_do_not() {
        let buf = Buf::default();
        let r = JsonReporter::new(Box::new(buf.clone()));
        let tagged = crate::event::Tagged { inner: &r, env: "prod-eu".into() };
        tagged.report(&Event::Warning { message: "x".into() });
        r.report(&Event::Warning { message: "y".into() });
        let text = buf.text();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["env"], "prod-eu");
        assert_eq!(lines[1].get("env"), None, "{text}");
    }
}
