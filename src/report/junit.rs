//! `--junit FILE`: the deployment as a JUnit XML report for Jenkins' `junit`
//! step, which shows each instance as a test.
//!
//! One testsuite per deployment (a rollback CodeDeploy starts is a suite of
//! its own), one testcase per instance with its lifecycle events and their
//! durations; a failed instance carries a `<failure>` naming the event, the
//! agent's error code and message, and the hook's output decoded from the
//! agent's log tail into system-out and system-err; a skipped instance is
//! `<skipped>`. Fleets above fifty instances are followed by their counts
//! only (see `watch`), so there only failed instances become testcases.
//!
//! The file is rewritten whenever a deployment ends, the command fails, or
//! an abort is reported: a SIGKILL after Jenkins' SIGTERM still leaves the
//! last complete report. Writing goes through a temporary file and a rename,
//! so Jenkins never reads half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::Reporter;
use crate::agent_log::{self, Stream};
use crate::event::{Event, Outcome};

/// Collects events and keeps `path` up to date.
pub struct JunitReporter {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Deployments in the order ferry met them.
    suites: Vec<Suite>,
    /// Why the command failed, when it did before any deployment ended.
    error: Option<String>,
    /// Set when the file could not be written, so the warning is said once.
    write_failed: bool,
}

#[derive(Default)]
struct Suite {
    deployment_id: String,
    name: String,
    /// `application.group`: Jenkins groups test cases by class name.
    classname: String,
    instances: BTreeMap<String, Instance>,
    outcome: Option<Outcome>,
    reason: Option<String>,
    elapsed_ms: u64,
}

#[derive(Default)]
struct Instance {
    /// (lifecycle event, status, duration) in the order they changed.
    events: Vec<(String, String, Option<u64>)>,
    failure: Option<Failure>,
    skipped: bool,
    /// Blue/green: `Blue` or `Green`.
    label: Option<String>,
}

struct Failure {
    lifecycle_event: String,
    error_code: Option<String>,
    message: Option<String>,
    script_name: Option<String>,
    log_tail: Option<String>,
}

impl JunitReporter {
    /// A report that will be written to `path`.
    pub fn new(path: &Path) -> JunitReporter {
        JunitReporter { path: path.to_path_buf(), state: Mutex::new(State::default()) }
    }

    /// The report as it stands, as XML.
    fn render(state: &State) -> String {
        let mut report = Report::new("ferry");
        for suite in &state.suites {
            report.add_test_suite(suite.to_junit());
        }
        if state.suites.is_empty()
            && let Some(error) = &state.error
        {
            // Nothing was deployed; Jenkins still shows why.
            let mut suite = TestSuite::new("ferry");
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(error.as_str()).set_type("ferry");
            suite.add_test_case(TestCase::new("release", status));
            report.add_test_suite(suite);
        }
        xml_chars_only(&report.to_string().unwrap_or_default())
    }

    fn write(&self, state: &mut State) -> Option<String> {
        let xml = Self::render(state);
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // The rename would replace a FIFO, device node or symlink there.
        let written = crate::outfile::check(&self.path)
            .map_err(std::io::Error::other)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|tmp| {
                std::fs::write(tmp.path(), xml)?;
                tmp.persist(&self.path).map_err(|e| e.error)?;
                Ok(())
            })
            .err();
        match written {
            Some(e) if !state.write_failed => {
                state.write_failed = true;
                Some(format!("cannot write the JUnit report {}: {e}", self.path.display()))
            }
            _ => None,
        }
    }

    /// Records `event`; returns whether the file should be rewritten now.
    fn record(state: &mut State, event: &Event) -> bool {
        match event {
            Event::DeploymentCreated { deployment_id, application, deployment_group } => {
                let suite = state.suite(deployment_id);
                suite.name = format!("{application}/{deployment_group} {deployment_id}");
                suite.classname = format!("{application}.{deployment_group}");
                false
            }
            Event::DeploymentStatus { deployment_id, .. } => {
                state.suite(deployment_id);
                false
            }
            Event::TargetEventChanged { deployment_id, target_id, lifecycle_event, status, duration_ms, .. } => {
                let instance = state.suite(deployment_id).instances.entry(target_id.clone()).or_default();
                instance.events.push((lifecycle_event.clone(), status.clone(), *duration_ms));
                false
            }
            Event::TargetLabelled { deployment_id, target_id, label } => {
                state.suite(deployment_id).instances.entry(target_id.clone()).or_default().label = Some(label.clone());
                false
            }
            Event::TargetSkipped { deployment_id, target_id } => {
                state.suite(deployment_id).instances.entry(target_id.clone()).or_default().skipped = true;
                false
            }
            Event::LifecycleFailed { deployment_id, target_id, lifecycle_event, error_code, script_name, message, log_tail } => {
                let instance = state.suite(deployment_id).instances.entry(target_id.clone()).or_default();
                instance.failure.get_or_insert(Failure {
                    lifecycle_event: lifecycle_event.clone(),
                    error_code: error_code.clone(),
                    message: message.clone(),
                    script_name: script_name.clone(),
                    log_tail: log_tail.clone(),
                });
                false
            }
            Event::Finished { deployment_id, outcome, error, failed_instances, elapsed_ms, .. } => {
                let suite = state.suite(deployment_id);
                suite.outcome = Some(*outcome);
                suite.reason = error.clone();
                suite.elapsed_ms = *elapsed_ms;
                for failed in failed_instances {
                    let instance = suite.instances.entry(failed.target_id.clone()).or_default();
                    if instance.failure.is_none() {
                        instance.failure = Some(Failure {
                            lifecycle_event: failed.lifecycle_events.join(", "),
                            error_code: None,
                            message: None,
                            script_name: None,
                            log_tail: None,
                        });
                    }
                }
                true
            }
            Event::Aborted { signal, deployment_id, status, .. } => {
                let suite = state.suite(deployment_id);
                suite.outcome = Some(Outcome::Aborted);
                suite.reason = Some(format!("aborted by {signal}; the deployment was {status}"));
                true
            }
            Event::Error { message, .. } => {
                state.error = Some(message.clone());
                true
            }
            // `--no-wait`: the deployment was created and not followed; the
            // report says so instead of nothing.
            Event::Receipt(r) if r.outcome == Some(Outcome::Created) => {
                let Some(id) = &r.deployment_id else { return false };
                let suite = state.suite(id);
                suite.outcome = Some(Outcome::Created);
                suite.reason = Some("created with --no-wait; ferry did not follow it".into());
                true
            }
            _ => false,
        }
    }
}

/// `xml` without the characters XML 1.0 does not allow anywhere, escaped or
/// not (U+FFFE, U+FFFF, C0 controls but tab and newlines, unpaired
/// surrogates cannot occur in a `str`): hook output may hold any of them,
/// and one makes the whole report unreadable to Jenkins.
fn xml_chars_only(xml: &str) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    xml.chars().filter(|c| allowed(*c)).collect()
}

impl State {
    fn suite(&mut self, deployment_id: &str) -> &mut Suite {
        let i = match self.suites.iter().position(|s| s.deployment_id == deployment_id) {
            Some(i) => i,
            None => {
                self.suites.push(Suite {
                    deployment_id: deployment_id.to_string(),
                    name: format!("deployment {deployment_id}"),
                    classname: format!("deployment.{deployment_id}"),
                    ..Suite::default()
                });
                self.suites.len() - 1
            }
        };
        &mut self.suites[i]
    }
}

impl Suite {
    fn to_junit(&self) -> TestSuite {
        let mut suite = TestSuite::new(self.name.as_str());
        suite.set_time(Duration::from_millis(self.elapsed_ms));
        suite.add_property(Property::new("deployment_id", self.deployment_id.as_str()));
        let outcome = self.outcome.map_or("running".to_string(), |o| format!("{o:?}").to_lowercase());
        suite.add_property(Property::new("outcome", outcome));
        if let Some(reason) = &self.reason {
            suite.add_property(Property::new("reason", reason.as_str()));
        }
        for (id, instance) in &self.instances {
            suite.add_test_case(instance.to_junit(id, &self.classname));
        }
        suite
    }
}

impl Instance {
    fn to_junit(&self, id: &str, classname: &str) -> TestCase {
        let status = if let Some(f) = &self.failure {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let mut message = format!("{} failed", f.lifecycle_event);
            if let Some(code) = &f.error_code {
                message.push_str(&format!(" [{code}]"));
            }
            if let Some(m) = f.message.as_deref().filter(|m| !m.is_empty()) {
                message.push_str(&format!(": {m}"));
            }
            status.set_message(message).set_type(f.error_code.as_deref().unwrap_or("LifecycleEventFailed"));
            let mut description = String::new();
            if let Some(script) = f.script_name.as_deref().filter(|s| !s.is_empty()) {
                description.push_str(&format!("script: {script}\n"));
            }
            if let Some(tail) = &f.log_tail {
                description.push_str(tail);
            }
            if !description.is_empty() {
                status.set_description(description);
            }
            status
        } else if self.skipped {
            let mut status = TestCaseStatus::skipped();
            status.set_message("CodeDeploy skipped this instance");
            status
        } else {
            TestCaseStatus::success()
        };
        // A blue/green instance's environment is part of its name.
        let name = self.label.as_ref().map_or(id.to_string(), |l| format!("{id} ({l})"));
        let mut case = TestCase::new(name, status);
        case.set_classname(classname);
        let total: u64 = self.events.iter().filter_map(|(_, _, ms)| *ms).sum();
        case.set_time(Duration::from_millis(total));
        let mut out: Vec<String> = self
            .events
            .iter()
            .map(|(name, status, ms)| match ms {
                Some(ms) => format!("{name} {status} ({})", super::human_ms(*ms)),
                None => format!("{name} {status}"),
            })
            .collect();
        if let Some(tail) = self.failure.as_ref().and_then(|f| f.log_tail.as_deref()) {
            out.push(agent_log::stream(tail, Stream::Stdout));
            let err = agent_log::stream(tail, Stream::Stderr);
            if !err.is_empty() {
                case.set_system_err(err);
            }
        }
        if !out.is_empty() {
            case.set_system_out(out.join("\n"));
        }
        case
    }
}

impl Reporter for JunitReporter {
    fn report(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if Self::record(&mut state, event)
            && let Some(warning) = self.write(&mut state)
        {
            // Said on stderr directly: this reporter has no other reporter to
            // hand the warning to, and a missing report must not go unnoticed.
            eprintln!("warning: {warning}");
        }
    }
}

/// Sends every event to two reporters: the display and the JUnit file.
pub struct Tee(pub Box<dyn Reporter>, pub Box<dyn Reporter>);

impl Reporter for Tee {
    fn report(&self, event: &Event) {
        self.0.report(event);
        self.1.report(event);
    }

    fn report_in(&self, env: &str, event: &Event) {
        self.0.report_in(env, event);
        self.1.report_in(env, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FailedInstance, Overview};

    fn run(events: &[Event]) -> String {
        let mut state = State::default();
        for e in events {
            JunitReporter::record(&mut state, e);
        }
        JunitReporter::render(&state)
    }

    #[test]
    fn a_failed_instance_carries_the_event_code_and_decoded_output() {
        let xml = run(&[
            Event::DeploymentCreated { deployment_id: "d-1".into(), application: "web".into(), deployment_group: "prod".into() },
            Event::TargetEventChanged {
                deployment_id: "d-1".into(),
                target_id: "i-1".into(),
                lifecycle_event: "AfterInstall".into(),
                status: "Failed".into(),
                duration_ms: Some(1200),
                position: 5,
                events_total: 7,
            },
            Event::LifecycleFailed {
                deployment_id: "d-1".into(),
                target_id: "i-1".into(),
                lifecycle_event: "AfterInstall".into(),
                error_code: Some("ScriptFailed".into()),
                script_name: Some("scripts/migrate.sh".into()),
                message: Some("Script at specified location: scripts/migrate.sh failed with exit code 1".into()),
                log_tail: Some(
                    "LifecycleEvent - AfterInstall\nScript - scripts/migrate.sh\n[stdout]migrating\n[stderr]boom".into(),
                ),
            },
            Event::Finished {
                deployment_id: "d-1".into(),
                outcome: Outcome::Failed,
                error: None,
                overview: Overview::default(),
                failed_instances: vec![FailedInstance { target_id: "i-1".into(), lifecycle_events: vec!["AfterInstall".into()] }],
                elapsed_ms: 5000,
            },
        ]);
        let report = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
        let suite = &report.suites[0];
        assert_eq!((suite.tests, suite.failures), (1, 1), "{xml}");
        let case = &suite.cases[0];
        let failure = match &case.status {
            junit_parser::TestStatus::Failure(f) => f,
            other => panic!("{other:?} in {xml}"),
        };
        assert_eq!(failure.failure_type, "ScriptFailed");
        assert!(failure.message.starts_with("AfterInstall failed [ScriptFailed]"), "{}", failure.message);
        assert_eq!(case.system_err.as_deref(), Some("boom"));
        assert!(case.system_out.as_deref().unwrap().contains("migrating"), "{xml}");
    }

    /// Issue 23 item 8: U+FFFE in hook output made the report malformed.
    #[test]
    fn characters_xml_forbids_are_dropped_so_the_report_stays_well_formed() {
        let xml = run(&[
            Event::LifecycleFailed {
                deployment_id: "d-1".into(),
                target_id: "i-\u{FFFF}1".into(),
                lifecycle_event: "AfterInstall".into(),
                error_code: Some("ScriptFailed".into()),
                script_name: Some("scripts/\u{FFFE}.sh".into()),
                message: Some("bad \u{FFFE}\u{FFFF}\u{1} bytes".into()),
                log_tail: Some("[stdout]a\u{FFFE}b\n[stderr]c\u{FFFF}d".into()),
            },
            Event::Finished {
                deployment_id: "d-1".into(),
                outcome: Outcome::Failed,
                error: Some("e\u{FFFF}".into()),
                overview: Overview::default(),
                failed_instances: Vec::new(),
                elapsed_ms: 1,
            },
        ]);
        assert!(!xml.contains(['\u{FFFE}', '\u{FFFF}', '\u{1}']), "{xml:?}");
        let report = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
        assert!(report.suites[0].cases[0].name.ends_with("i-1"), "{xml}");
        assert!(report.suites[0].cases[0].system_out.as_deref().unwrap().contains("ab"), "{xml}");
    }

    /// Issue 23 item 8: with `--no-wait` no deployment ends, and nothing was written.
    #[test]
    fn a_deployment_created_without_following_is_written_as_created() {
        let mut state = State::default();
        let receipt =
            crate::event::Receipt { deployment_id: Some("d-3".into()), outcome: Some(Outcome::Created), ..Default::default() };
        assert!(JunitReporter::record(&mut state, &Event::Receipt(receipt)), "the report is written");
        let xml = JunitReporter::render(&state);
        let report = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
        let props = &report.suites[0].properties.hashmap;
        assert_eq!(props.get("deployment_id").map(String::as_str), Some("d-3"), "{xml}");
        assert_eq!(props.get("outcome").map(String::as_str), Some("created"), "{xml}");
    }

    #[test]
    fn a_failure_before_any_deployment_is_one_error_case_with_the_reason() {
        let xml = run(&[Event::Error { class: "upload".into(), exit_code: 2, message: "S3 refused: AccessDenied".into() }]);
        let report = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
        assert_eq!(report.errors, 1, "{xml}");
        match &report.suites[0].cases[0].status {
            junit_parser::TestStatus::Error(e) => assert_eq!(e.message, "S3 refused: AccessDenied"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_abort_is_written_with_its_signal_and_what_was_running() {
        let mut state = State::default();
        let created =
            Event::DeploymentCreated { deployment_id: "d-2".into(), application: "web".into(), deployment_group: "prod".into() };
        assert!(!JunitReporter::record(&mut state, &created));
        let aborted = Event::Aborted {
            signal: "SIGTERM".into(),
            deployment_id: "d-2".into(),
            status: "Stopped".into(),
            rollback_deployment_id: None,
            rollback_status: None,
        };
        assert!(JunitReporter::record(&mut state, &aborted), "an abort rewrites the file at once");
        let xml = JunitReporter::render(&state);
        let report = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
        let props = &report.suites[0].properties.hashmap;
        assert_eq!(props.get("outcome").map(String::as_str), Some("aborted"));
        assert!(props["reason"].contains("SIGTERM"), "{xml}");
    }

    #[test]
    fn the_file_is_replaced_whole_when_a_deployment_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.xml");
        let r = JunitReporter::new(&path);
        r.report(&Event::DeploymentStatus {
            deployment_id: "d-3".into(),
            status: "InProgress".into(),
            overview: Overview::default(),
        });
        assert!(!path.exists(), "nothing is written before the end");
        r.report(&Event::Finished {
            deployment_id: "d-3".into(),
            outcome: Outcome::Succeeded,
            error: None,
            overview: Overview::default(),
            failed_instances: vec![],
            elapsed_ms: 10,
        });
        let report = junit_parser::from_reader(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        assert_eq!(report.suites[0].properties.hashmap.get("outcome").map(String::as_str), Some("succeeded"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left beside it");
    }
}
