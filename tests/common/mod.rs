//! Helpers shared by ferry's integration tests: running the real binary,
//! making application trees, and checking output for leaked secrets.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub mod proxy;

#[allow(unused_imports)] // each test binary uses a different subset
pub use ferry_test_stack::{Stack, StackOptions};

/// The ferry binary under test.
pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// What a ferry run left behind.
#[derive(Debug)]
pub struct Run {
    /// Exit status code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "the message appears somewhere" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion and captures its output.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("ferry runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails the test if any secret the stack handed out shows up in `run`'s output.
pub fn assert_no_secrets(stack: &Stack, run: &Run) {
    for secret in stack.secrets() {
        assert!(!run.all().contains(&secret), "a secret leaked into ferry's output:\n{}", run.all());
    }
}

/// Writes a small CodeDeploy application: appspec.yml with files and hooks,
/// and executable hook scripts. `validate` is the ValidateService script body.
pub fn app_tree(dir: &Path, validate: &str) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::write(app.join("site/index.html"), "<h1>hello from ferry</h1>\n").unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\nhooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
    )
    .unwrap();
    let script = app.join("scripts/validate.sh");
    std::fs::write(&script, format!("#!/bin/bash\n{validate}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    app
}

/// A loopback port that accepts TCP connections and records whether any
/// arrived: pointed at by every AWS endpoint variable, it proves that ferry
/// made no AWS call.
pub struct Tripwire {
    listener: TcpListener,
}

impl Tripwire {
    /// Binds a fresh port.
    pub fn new() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Tripwire { listener }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.listener.local_addr().unwrap())
    }

    /// A ferry command whose every AWS endpoint is this tripwire, with fake
    /// keys, and a clean environment.
    pub fn command(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new(FERRY);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", cwd)
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .current_dir(cwd);
        cmd
    }

    /// Whether anything connected.
    pub fn tripped(&self) -> bool {
        std::thread::sleep(Duration::from_millis(50));
        self.listener.accept().is_ok()
    }
}
