//! jenkins/resources/ferry/install.sh (the ferryInstall step) against a
//! hostile or unlucky agent: an install made from another tarball, a
//! SHA-256 that is not one, a root left without a binary, and an abort
//! (SIGTERM) in the middle of the download. (tests/jenkins.rs covers the
//! architectures and two executors installing at once.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/jenkins/resources/ferry/install.sh");

/// A release tarball for x86_64 in `dir` whose `bin/ferry` prints `says`;
/// returns its SHA-256.
fn tarball(dir: &Path, says: &str) -> String {
    let name = "ferry-0.2.0-x86_64-linux";
    let src = dir.join(format!("src-{says}"));
    std::fs::create_dir_all(src.join(name).join("bin")).unwrap();
    let bin = src.join(name).join("bin/ferry");
    std::fs::write(&bin, format!("#!/bin/sh\necho {says}\n")).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = dir.join(format!("{name}.tar.gz"));
    assert!(Command::new("tar").arg("-czf").arg(&out).arg("-C").arg(&src).arg(name).status().unwrap().success());
    let sum = Command::new("sha256sum").arg(&out).output().unwrap();
    String::from_utf8_lossy(&sum.stdout).split_whitespace().next().unwrap().to_string()
}

/// A directory of stand-ins put first on PATH: `uname` says x86_64, and
/// `extra` (name, script) more.
fn fakebin(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, body) in [("uname", "#!/bin/sh\necho x86_64\n")].iter().chain(extra) {
        std::fs::write(bin.join(name), body).unwrap();
        std::fs::set_permissions(bin.join(name), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    bin
}

fn command(dir: &Path, root: &Path, sha: &str, bin: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg(SCRIPT)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("FERRY_ROOT", root)
        .env("FERRY_VERSION", "0.2.0")
        .env("FERRY_BASE_URL", format!("file://{}", dir.display()))
        .env("FERRY_SHA256_X86_64", sha);
    cmd
}

fn install(dir: &Path, root: &Path, sha: &str) -> Output {
    command(dir, root, sha, &fakebin(dir, &[])).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn runs(root: &Path) -> String {
    String::from_utf8_lossy(&Command::new(root.join("bin/ferry")).output().unwrap().stdout).trim().to_string()
}

/// Issue 23 item 10: an existing install was trusted whatever SHA-256 the
/// step was given now; the one it came from is recorded and compared.
#[test]
fn an_existing_install_from_another_tarball_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache/0.2.0");
    let first = tarball(dir.path(), "first");
    let out = install(dir.path(), &root, &first);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(runs(&root), "first");
    assert!(install(dir.path(), &root, &first.to_uppercase()).status.success(), "the same SHA-256, any case");

    let second = tarball(dir.path(), "second");
    let out = install(dir.path(), &root, &second);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains(&first) && said.contains(&second) && said.contains("Remove"), "{said}");
    assert_eq!(runs(&root), "first", "left as it was");
}

/// Issue 23 item 10: a SHA-256 that is not exactly 64 hex digits (a prefix,
/// a second line for sha256sum -c to find) is refused before any download.
#[test]
fn a_sha256_that_is_not_64_hex_digits_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = tarball(dir.path(), "trojan");
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    for bad in [&good[..63], &format!("{good}0"), &format!("{empty}  /dev/null\n{empty}"), &format!("{}zz", &good[..62]), " "] {
        let root = dir.path().join("cache/0.2.0");
        let out = install(dir.path(), &root, bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(stderr(&out).contains("is not a SHA-256 (64 hex digits)"), "{bad:?}: {}", stderr(&out));
        assert!(!root.exists(), "{bad:?}: nothing installed");
    }
}

/// Issue 23 item 10: a root that exists without a binary failed silently.
#[test]
fn a_root_without_a_binary_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let sha = tarball(dir.path(), "x");
    let root = dir.path().join("cache/0.2.0");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let out = install(dir.path(), &root, &sha);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("holds no bin/ferry"), "{}", stderr(&out));
}

/// Issue 23 item 10: SIGTERM (a Jenkins abort) during the download left
/// `.install-*` and an orphaned curl behind.
#[test]
fn sigterm_during_the_download_removes_the_temporary_directory_and_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let sha = tarball(dir.path(), "x");
    let pidfile = dir.path().join("curl.pid");
    // A download that never ends, and says which process it is.
    let curl = format!("#!/bin/sh\necho $$ > {}.tmp && mv {0}.tmp {0}\nexec sleep 600\n", pidfile.display());
    let bin = fakebin(dir.path(), &[("curl", &curl)]);
    let root = dir.path().join("cache/0.2.0");
    let mut child = command(dir.path(), &root, &sha, &bin).spawn().unwrap();
    let curl_pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            break text.trim().parse::<i32>().unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "install.sh ended before its download started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("cache")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "nothing left in the install's parent: {left:?}");
    // The download was killed (not orphaned): it is gone once reaped.
    let gone = || !Command::new("kill").args(["-0", &curl_pid.to_string()]).status().unwrap().success();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !gone() {
        assert!(std::time::Instant::now() < deadline, "curl ({curl_pid}) outlived install.sh");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
