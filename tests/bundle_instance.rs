//! What lands on an instance from a bundle ferry builds: each bundle is
//! unpacked and installed by the CodeDeploy agent's own code
//! (`tests/bundle_agent.rb`: `LinuxUtil.extract_zip`, i.e. `unzip -qo`, or
//! `extract_tgz`, i.e. `tar -zxpsf`, then the Installer's mkdir and
//! `FileUtils.copy(…, preserve: true)`), and the installed tree is compared
//! with the source: modes, directories, times.
//!
//! Needs `ruby`, `unzip` and the agent's source, as tests/appspec_agent.rs
//! (run scripts/setup-agent).

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

/// (path, mode, mtime) of every file of the source tree.
const FILES: [(&str, u32, i64); 8] = [
    ("appspec.yml", 0o644, 1_700_000_000),
    ("secret.env", 0o600, 1_700_000_001),
    ("scripts/run.sh", 0o755, 1_650_000_000),
    ("config/app.conf", 0o640, 1_600_000_000),
    ("bin/tool", 0o4755, 1_600_000_002),
    ("shared/data.txt", 0o664, 1_600_000_003),
    ("site/index.html", 0o644, 1_700_000_002),
    ("site/old.html", 0o444, 300_000_000),
];
/// (path, mode) of directories, the last two empty.
const DIRS: [(&str, u32); 4] = [("shared", 0o2775), ("site", 0o755), ("tmp", 0o1777), ("empty", 0o750)];

const APPSPEC: &str = "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\n";

fn set_time(path: &Path, secs: i64) {
    File::open(path).unwrap().set_modified(UNIX_EPOCH + Duration::from_secs(secs as u64)).unwrap();
}

fn source_tree(dir: &Path) {
    for (name, mode, time) in FILES {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = if name == "appspec.yml" { APPSPEC.to_string() } else { format!("{name}\n") };
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        set_time(&path, time);
    }
    for (name, mode) in DIRS {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// The time ferry gives a file modified at `secs`: floored to 2 s, not
/// before 1980 (docs/bundle-and-upload.md).
fn stamp(secs: i64) -> i64 {
    let t = secs.max(315_532_800);
    t - t % 2
}

fn agent_source() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let beside = repo.join("../shared/third_party/aws-codedeploy-agent");
    [Some(beside.clone()), std::env::var_os("FERRY_AGENT_SRC").map(PathBuf::from)]
        .into_iter()
        .flatten()
        .find(|p| p.join("lib/instance_agent/plugins/codedeploy/installer.rb").is_file())
        .unwrap_or_else(|| {
            panic!(
                "the CodeDeploy agent's source is neither at {} nor at $FERRY_AGENT_SRC: run scripts/setup-agent",
                beside.display()
            )
        })
}

/// `ferry bundle DIR --out OUT`, with a private cache.
fn ferry_bundle(dir: &Path, out: &Path, cache: &Path, epoch: Option<&str>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("bundle").arg(dir).arg("--out").arg(out).env("XDG_CACHE_HOME", cache).env_remove("SOURCE_DATE_EPOCH");
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    let done = cmd.output().unwrap();
    assert!(done.status.success(), "ferry bundle: {}", String::from_utf8_lossy(&done.stderr));
}

/// Unpacks and installs `bundle` with the agent's code into `work`.
fn agent_install(bundle: &Path, kind: &str, work: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("ruby")
        .arg(repo.join("tests/bundle_agent.rb"))
        .arg(agent_source())
        .arg(bundle)
        .arg(kind)
        .arg(work)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ruby` ({e}): run scripts/setup-agent, which installs Debian's ruby and unzip"));
    assert!(
        out.status.success(),
        "the agent's unpack and install failed (run scripts/setup-agent if unzip or a Ruby package is missing): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

#[test]
fn the_agent_installs_each_file_with_its_own_mode_and_time_and_keeps_empty_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    source_tree(&app);
    for kind in ["zip", "tgz"] {
        let bundle = tmp.path().join(format!("app.{kind}"));
        ferry_bundle(&app, &bundle, &tmp.path().join("cache"), None);
        let work = tmp.path().join(format!("instance-{kind}"));
        agent_install(&bundle, kind, &work);
        let installed = work.join("srv/app");
        // unzip (the agent's zip path, without -K) drops setuid, setgid and
        // sticky; tar -p (tgz, tar) keeps them.
        let special = if kind == "zip" { 0o777 } else { 0o7777 };
        for (name, mode, time) in FILES {
            let path = installed.join(name);
            let got = mode_of(&path);
            assert_eq!(got, mode & special, "{kind}: {name} installed {got:o}, source {mode:o}");
            assert_eq!(got & !mode, 0, "{kind}: {name} is never more permissive than its source");
            assert_eq!(std::fs::metadata(&path).unwrap().mtime(), stamp(time), "{kind}: {name} keeps its own time");
        }
        for (name, mode) in DIRS {
            assert!(installed.join(name).is_dir(), "{kind}: the directory {name} is installed, empty or not");
            // The Installer makes destination directories itself; their modes
            // are what the deployment archive holds, unpacked by the agent.
            let unpacked = mode_of(&work.join("deployment-archive").join(name));
            assert_eq!(unpacked, mode & special, "{kind}: {name} unpacked {unpacked:o}, source {mode:o}");
        }
    }
}

#[test]
fn a_same_size_change_changes_the_installed_time_and_the_same_tree_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    source_tree(&app);
    let cache = tmp.path().join("cache");
    let (a, b, c) = (tmp.path().join("a.zip"), tmp.path().join("b.zip"), tmp.path().join("c.zip"));
    ferry_bundle(&app, &a, &cache, None);
    ferry_bundle(&app, &b, &tmp.path().join("other-cache"), None);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "the same tree gives the same bytes");
    // Same size, new content, a new mtime: what a web server's ETag
    // (mtime-size) and Last-Modified are made of.
    let page = app.join("site/index.html");
    std::fs::write(&page, "site/INDEX.html\n").unwrap();
    set_time(&page, 1_700_000_100);
    ferry_bundle(&app, &c, &cache, None);
    let work = tmp.path().join("instance");
    agent_install(&c, "zip", &work);
    assert_eq!(std::fs::metadata(work.join("srv/app/site/index.html")).unwrap().mtime(), 1_700_000_100);
}

#[test]
fn with_source_date_epoch_two_checkouts_of_one_tree_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    source_tree(&one);
    source_tree(&two);
    // Two checkouts an hour apart: every file but the oldest written then.
    for (name, _, _) in FILES.iter().filter(|f| f.0 != "site/old.html") {
        File::options().write(true).open(two.join(name)).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
        File::options()
            .write(true)
            .open(one.join(name))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    let cache = tmp.path().join("cache");
    for kind in ["zip", "tgz"] {
        let (a, b) = (tmp.path().join(format!("one.{kind}")), tmp.path().join(format!("two.{kind}")));
        ferry_bundle(&one, &a, &cache, Some("1600000000"));
        ferry_bundle(&two, &b, &cache, Some("1600000000"));
        assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "{kind}: SOURCE_DATE_EPOCH makes both the same");
        let work = tmp.path().join(format!("instance-{kind}"));
        agent_install(&b, kind, &work);
        let t = std::fs::metadata(work.join("srv/app/secret.env")).unwrap().mtime();
        assert_eq!(t, 1_600_000_000, "{kind}: a newer file is clamped to SOURCE_DATE_EPOCH");
        let old = std::fs::metadata(work.join("srv/app/site/old.html")).unwrap().mtime();
        assert_eq!(old, 315_532_800, "{kind}: an older one keeps its own (here, the zip's earliest)");
    }
}
