//! The `ferry-test-stack` binary as a person or a script runs it (issue 26
//! item 15): `--help`, a message instead of a panic when moto's virtualenv
//! is missing, and noticing when the moto it started dies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-test-stack");

#[test]
fn help_prints_the_usage_and_exits_zero() {
    for flag in ["--help", "-h"] {
        let out = Command::new(BIN).arg(flag).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(stdout.contains("usage: ferry-test-stack up") && stdout.contains("--instances N"), "{stdout}");
    }
    let out = Command::new(BIN).args(["up", "--help"]).output().unwrap();
    assert!(out.status.success(), "--help after the command too: {out:?}");
}

#[test]
fn a_missing_moto_is_a_message_naming_setup_venv_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(".venv/bin/moto_server");
    let out = Command::new(BIN).arg("up").env("FERRY_MOTO_SERVER", &missing).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("moto not found") && stderr.contains("scripts/setup-venv"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one message: {stderr}");
}

#[test]
fn the_stack_says_when_its_moto_dies_and_exits_non_zero() {
    let mut child =
        Command::new(BIN).arg("up").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut moto_pid = None;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(pid) = line.strip_prefix("moto pid:") {
            moto_pid = Some(pid.trim().parse::<i32>().unwrap());
        }
        if line.trim() == "ferry-test-stack ready" {
            break;
        }
        line.clear();
    }
    let pid = moto_pid.expect("the stack prints moto's pid before it is ready");
    // SAFETY: a plain syscall on the moto this test's own child started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("moto (STS, IAM, S3) at http://127.0.0.1:") && stderr.contains("exited") && stderr.contains("its log:"),
        "names the server that died, how, and its log:\n{stderr}"
    );
}

#[test]
fn a_stack_in_a_test_names_its_dead_moto() {
    let mut stack = ferry_test_stack::Stack::start();
    assert_eq!(stack.dead_server(), None, "moto runs");
    // SAFETY: a plain syscall on the moto this stack started.
    assert_eq!(unsafe { libc::kill(stack.moto_pid() as i32, libc::SIGKILL) }, 0);
    let dead = loop {
        if let Some(dead) = stack.dead_server() {
            break dead;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(dead.starts_with("moto (STS, IAM, S3) at http://127.0.0.1:") && dead.contains("signal: 9"), "{dead}");
}
