//! The live board on a terminal: ferry runs on a pseudo-terminal, its output
//! is replayed into a VT100 screen (the `vt100` crate), and the test reads
//! the screens a person would have seen. The same release with plain output
//! has no terminal codes at all.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FERRY, Stack, StackOptions, pty, run};

fn app(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    std::fs::write(app.join("index.html"), "hi\n").unwrap();
    app
}

/// Runs `ferry release` with stderr on a terminal; returns every distinct
/// screen seen while it ran, the last screen, and the exit code.
fn release_on_a_terminal(stack: &Stack, dir: &Path, extra: &[&str]) -> (Vec<String>, String, i32) {
    let app = app(dir);
    let (screens, last, code, _) = release_app_on_a_terminal(stack, dir, &app, extra);
    (screens, last, code)
}

/// [`release_on_a_terminal`] of `app`, also returning every byte ferry wrote
/// to the terminal.
fn release_app_on_a_terminal(stack: &Stack, dir: &Path, app: &Path, extra: &[&str]) -> (Vec<String>, String, i32, Vec<u8>) {
    let config = stack.write_config(dir, "production");
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(&config)
        .args(extra);
    let shown = pty::on_a_terminal(cmd);
    let last = shown.last();
    (shown.screens, last, shown.code, shown.raw)
}

/// A board row: `  i-… <event> <status> [bar] n/m elapsed`.
fn row_of(screen: &str) -> Option<&str> {
    screen.lines().find(|l| l.trim_start().starts_with("i-") && l.contains('[') && l.contains('/'))
}

#[test]
fn the_board_shows_a_row_per_instance_in_flight_and_folds_finished_ones_into_the_totals() {
    // Half at a time: two instances side by side, then the other two while
    // the first two already count as done.
    let stack = Stack::start_with(StackOptions { instances: 4, step_delay: Duration::from_millis(300), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let (screens, last, code) =
        release_on_a_terminal(&stack, dir.path(), &["--deployment-config", "CodeDeployDefault.HalfAtATime"]);
    assert_eq!(code, 0, "{last}");

    // A screen is read after every chunk ferry writes, so some are frames
    // half drawn; a whole frame ends with the totals line.
    let whole = |s: &&String| s.lines().rfind(|l| !l.is_empty()).is_some_and(|l| l.contains("instances"));
    let with_rows: Vec<&String> = screens.iter().filter(|s| row_of(s).is_some()).filter(whole).collect();
    assert!(!with_rows.is_empty(), "no screen showed an instance row:\n{}", screens.join("\n-----\n"));
    let busiest = with_rows.iter().max_by_key(|s| s.lines().filter(|l| row_of(l).is_some()).count()).unwrap();
    let rows: Vec<&str> = busiest.lines().filter(|l| row_of(l).is_some()).collect();
    // Shown with --no-capture: the capture in docs/output.md comes from here.
    eprintln!("busiest screen:\n{busiest}");
    assert!(rows.len() >= 2, "instances running side by side each have their own row:\n{busiest}");
    let events =
        ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"];
    for row in &rows {
        assert!(events.iter().any(|e| row.contains(e)), "a row names its lifecycle event: {row}");
        assert!(row.contains("/7"), "a row's bar runs through the revision's seven events: {row}");
    }
    // The totals line sits below the rows and counts finished instances.
    let totals = busiest.lines().collect::<Vec<_>>().iter().rposition(|l| l.contains("instances")).expect("a totals line");
    let last_row = busiest.lines().collect::<Vec<_>>().iter().rposition(|l| row_of(l).is_some()).unwrap();
    assert!(totals > last_row, "the totals line is last:\n{busiest}");
    assert!(
        screens.iter().any(|s| s.contains("· 2 done") && row_of(s).is_some()),
        "the first half folds into the counter while the second half runs:\n{}",
        screens.join("\n-----\n")
    );

    // At the end the board is gone and the outcome is printed.
    assert!(row_of(&last).is_none(), "no row left after the end:\n{last}");
    assert!(last.contains("succeeded"), "{last}");
}

#[test]
fn a_failed_instance_stays_pinned_with_its_event_and_error_code() {
    let stack = Stack::start_with(StackOptions {
        instances: 3,
        step_delay: Duration::from_millis(300),
        group_tags: vec![("emulator:fail-event".into(), "AfterInstall".into()), ("emulator:fail-instances".into(), "1".into())],
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // One at a time: the first instance's failure fails the deployment.
    let (screens, last, code) =
        release_on_a_terminal(&stack, dir.path(), &["--deployment-config", "CodeDeployDefault.OneAtATime"]);
    assert_eq!(code, 3, "{last}");
    let pinned = screens
        .iter()
        .find_map(|s| s.lines().find(|l| l.trim_start().starts_with("i-") && l.contains("✗ AfterInstall ScriptFailed")));
    assert!(pinned.is_some(), "the failed row shows ✗, the event and the code:\n{}", screens.join("\n-----\n"));
    if let Some(screen) = screens.iter().rfind(|s| s.contains("✗ AfterInstall") && s.contains("instances")) {
        eprintln!("pinned screen:\n{screen}");
    }
    assert!(screens.iter().any(|s| s.contains("1 failed")), "the totals count the failure");
}

#[test]
fn plain_output_of_the_same_release_has_no_terminal_codes() {
    let stack = Stack::start_with(StackOptions { instances: 3, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let config = stack.write_config(dir.path(), "production");
    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--progress", "plain", "--config"])
        .arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stderr.contains('\u{1b}') && !out.stderr.contains('\r'), "{}", out.stderr);
    assert!(out.stderr.contains("AfterInstall Succeeded"), "plain keeps its per-event lines:\n{}", out.stderr);
}

/// Issue 18 item 15: the TTY renderer passed hook output to the terminal
/// as it was, so a hook could retitle the window, clear the screen or switch
/// to the alternate screen. Forced with `--progress tty` on a real pty, a
/// failing hook's escape sequences never reach the terminal; its text does.
#[test]
fn a_hooks_escape_sequences_never_reach_the_terminal() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let hostile = r"printf '\033]0;pwned-title\007\033[2J\033[?1049hboom from the hook\n'; exit 1";
    let app = common::app_tree(dir.path(), hostile);
    let (_, last, code, raw) = release_app_on_a_terminal(&stack, dir.path(), &app, &["--progress", "tty"]);
    assert_eq!(code, 3, "{last}");
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(raw_text.contains("boom from the hook"), "the hook's text is shown:\n{raw_text:?}");
    for sequence in ["\u{1b}]0;", "pwned-title", "\u{1b}[2J", "\u{1b}[?1049h"] {
        assert!(!raw_text.contains(sequence), "{sequence:?} reached the terminal:\n{raw_text:?}");
    }
}

/// Issue 18 item 15: TTY output panicked on a closed pipe (`ferry history
/// | head` on a terminal). With `--progress tty` forced and stdout a pipe
/// whose reader is gone, `history` ends without a panic.
#[test]
fn tty_output_into_a_closed_stdout_does_not_panic() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let config = stack.write_config(dir.path(), "production");
    for _ in 0..2 {
        let out = run(stack
            .ferry_command(FERRY)
            .args(["release", app.to_str().unwrap(), "--env", "production", "--config"])
            .arg(&config));
        assert_eq!(out.code, 0, "{}", out.all());
        std::fs::write(app.join("index.html"), format!("{:?}\n", Instant::now())).unwrap();
    }
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = stack
        .ferry_command(FERRY)
        .args(["--progress", "tty", "history", "--env", "production", "--config"])
        .arg(&config)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Issue 26 item 8, on a terminal: a failed release that CodeDeploy rolled
/// back ends with the verdict, printed after the rollback's board is
/// cleared, not with the rollback's "succeeded".
#[test]
fn a_rolled_back_release_ends_the_terminal_with_the_verdict() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let good = common::app_tree(&dir.path().join("good"), "exit 0");
    let first =
        run(stack.ferry_command(FERRY).args(["release", good.to_str().unwrap(), "--env", "production", "--config"]).arg(&config));
    assert_eq!(first.code, 0, "{}", first.all());
    let bad = common::app_tree(&dir.path().join("bad"), "echo broken >&2; exit 1");
    let extra = ["--progress", "tty", "--rollback-on", "failure", "--deployment-config", "CodeDeployDefault.AllAtOnce"];
    let (_, last, code, _) = release_app_on_a_terminal(&stack, dir.path(), &bad, &extra);
    assert_eq!(code, 7, "{last}");
    let verdict = last.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(
        verdict.starts_with("deployment d-")
            && verdict.contains(" FAILED; the previous revision was restored by rollback d-")
            && verdict.ends_with("(exit 7)"),
        "the terminal's last line is the verdict:\n{last}"
    );
}

/// Issue 26 item 12, on a terminal: three instances failing one hook with
/// the same output show that output once, under one header naming them.
#[test]
fn identical_hook_output_of_several_instances_is_printed_once_on_a_terminal() {
    let stack = Stack::start_with(StackOptions { instances: 3, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = common::app_tree(dir.path(), "echo 'the same broken output' >&2; exit 1");
    let extra = ["--progress", "tty", "--deployment-config", "CodeDeployDefault.AllAtOnce"];
    let (_, last, code, raw) = release_app_on_a_terminal(&stack, dir.path(), &app, &extra);
    assert_eq!(code, 3, "{last}");
    let text = String::from_utf8_lossy(&raw).replace('\r', "");
    let failed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("instance ").nth(1))
        .filter_map(|rest| rest.split_once(" failed ValidateService").map(|(id, _)| id))
        .collect();
    assert_eq!(failed.len(), 3, "each instance's failure has its line:\n{text}");
    assert_eq!(text.matches("! the same broken output").count(), 1, "the output once:\n{text}");
    let headers: Vec<&str> = text.lines().filter(|l| l.contains("--- hook output of ")).collect();
    for id in &failed {
        assert!(headers.iter().any(|h| h.contains(id)), "{id} is named under a hook output header:\n{text}");
    }
}

/// Issue 26 item 11, on a terminal: `ferry history` heads its rows with the
/// column names on the terminal (stderr), while stdout, piped, gets the
/// rows alone.
#[test]
fn history_on_a_terminal_has_a_header_and_stdout_keeps_the_rows_alone() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app(dir.path());
    let release =
        run(stack.ferry_command(FERRY).args(["release", app.to_str().unwrap(), "--env", "production", "--config"]).arg(&config));
    assert_eq!(release.code, 0, "{}", release.all());

    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["--progress", "tty", "history", "--env", "production", "--config"]).arg(&config).stdout(Stdio::piped());
    let (child, mut controller) = pty::spawn(cmd, pty::screen(pty::ROWS, pty::COLS), false);
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        // EIO once ferry, the last holder of the terminal side, exits.
        let _ = controller.read_to_end(&mut raw);
        raw
    });
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&reader.join().unwrap()).replace('\r', "");
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(screen.contains("CREATED\tDEPLOYMENT\tSTATUS\tBUILD\tSHA256\tCREATOR\tKEY\tKIND\tDESCRIPTION"), "{screen:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("20") && stdout.contains(&format!("\t{}\tSucceeded\t", release.stdout.trim())), "{stdout}");
}
