//! The emulator's own hook runner against the real CodeDeploy agent: every
//! hook and install case below is deployed once to a real agent and once to
//! an emulated instance, and what each reports (per event: status,
//! errorCode, scriptName, message, logTail) and installs (the tree under the
//! instance root: paths, types, modes, link targets, contents) must be the
//! same, after the few normalisations `normalise` lists (paths and ids that
//! differ by construction).
//!
//! The emulator runner stays for speed and scale (a thousand instances); this
//! test is what keeps it true. Needs what tests/agent.rs needs.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Stack, StackOptions};
use ferry_test_stack::AgentMode;
use ferry_test_stack::agent::INSTANCE_ROOT;

/// One file of a bundle.
#[derive(Clone)]
enum Entry {
    File(&'static str, Vec<u8>, u32),
    Link(&'static str, &'static str),
    Dir(&'static str),
}

fn file(path: &'static str, text: &str) -> Entry {
    Entry::File(path, text.as_bytes().to_vec(), 0o644)
}

fn script(path: &'static str, text: &str) -> Entry {
    Entry::File(path, text.as_bytes().to_vec(), 0o755)
}

/// A deployment to make on both sides.
struct Case {
    name: &'static str,
    appspec: String,
    files: Vec<Entry>,
    /// The deployment's fileExistsBehavior (None: the API default).
    file_exists_behavior: Option<&'static str>,
    /// Files put on the instance before the deployment: (path under INSTANCE_ROOT, text).
    planted: Vec<(String, &'static str)>,
    /// The directory under INSTANCE_ROOT this case installs to; when set,
    /// the whole INSTANCE_ROOT tree is compared afterwards.
    tree: Option<String>,
    /// A file a hook may leave in the deployment's archive: whether it
    /// exists afterwards is compared (how a script tells what signal came).
    marker: Option<&'static str>,
}

fn hook_case(name: &'static str, body: &str, timeout: u32) -> Case {
    Case {
        name,
        appspec: format!(
            "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/hook.sh\n      timeout: {timeout}\n"
        ),
        files: vec![script("scripts/hook.sh", &format!("#!/bin/bash\n{body}\n"))],
        file_exists_behavior: None,
        planted: Vec::new(),
        tree: None,
        marker: None,
    }
}

fn raw_hook_case(name: &'static str, appspec_hook: &str, files: Vec<Entry>) -> Case {
    Case {
        name,
        appspec: format!("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n{appspec_hook}"),
        files,
        file_exists_behavior: None,
        planted: Vec::new(),
        tree: None,
        marker: None,
    }
}

fn install_case(name: &'static str, dir: &str, appspec_extra: &str, files: Vec<Entry>) -> Case {
    Case {
        name,
        appspec: format!("version: 0.0\nos: linux\n{appspec_extra}"),
        files,
        file_exists_behavior: None,
        planted: Vec::new(),
        tree: Some(dir.to_string()),
        marker: None,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // The twelve logTail cases the emulator was first checked on.
        hook_case("interleaved streams", "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; exit 1", 30),
        hook_case("exit code 42", "echo failing; exit 42", 30),
        hook_case("succeeds with output", "echo fine; echo also >&2", 30),
        hook_case("timeout", "echo start; sleep 30", 2),
        hook_case("long line", "head -c 3000 /dev/zero | tr '\\0' x; echo; echo after; exit 1", 30),
        hook_case("many lines", "for i in $(seq 1 300); do echo \"line $i\"; done; exit 1", 30),
        hook_case("multibyte", "printf 'é%.0s' $(seq 1 1000); echo; echo done; exit 1", 30),
        hook_case("CRLF", "printf 'a\\r\\nb\\r\\n'; exit 1", 30),
        hook_case("last line without newline", "printf 'no newline'; exit 1", 30),
        hook_case("killed by a signal", "echo before; kill -9 $$", 30),
        raw_hook_case("missing script", "    - location: scripts/nope.sh\n", vec![file("other.txt", "x")]),
        raw_hook_case(
            "not executable",
            "    - location: scripts/hook.sh\n",
            vec![Entry::File("scripts/hook.sh", b"#!/bin/bash\necho ran anyway; exit 1\n".to_vec(), 0o644)],
        ),
        // Interpreters.
        raw_hook_case(
            "python shebang",
            "    - location: scripts/hook.py\n",
            vec![script(
                "scripts/hook.py",
                "#!/usr/bin/env python3\nimport sys\nprint('python', sys.version_info[0])\nsys.exit(2)\n",
            )],
        ),
        raw_hook_case(
            "no shebang",
            "    - location: scripts/hook.sh\n",
            vec![script("scripts/hook.sh", "if [ -n \"$BASH_VERSION\" ]; then echo bash; else echo not bash; fi\nexit 1\n")],
        ),
        // Where, as whom, with what.
        hook_case("working directory", "pwd; exit 1", 30),
        raw_hook_case(
            "runas",
            "    - location: scripts/hook.sh\n      runas: ferry-hook\n",
            vec![script("scripts/hook.sh", "#!/bin/bash\nid -un; exit 1\n")],
        ),
        hook_case(
            "environment",
            "echo \"$LIFECYCLE_EVENT|$APPLICATION_NAME|$DEPLOYMENT_GROUP_NAME|$BUNDLE_BUCKET|$BUNDLE_KEY|$BUNDLE_ETAG|${BUNDLE_VERSION-unset}\"; exit 1",
            30,
        ),
        // The agent TERMs the script's group and waits; what the trap prints
        // is lost with the closed pipes, so it leaves a file instead.
        Case {
            marker: Some("scripts/got-term"),
            ..hook_case(
                "timeout signal",
                "trap 'touch \"$(dirname \"$0\")/got-term\"; exit 1' TERM; echo start; sleep 30 & wait",
                2,
            )
        },
        hook_case("output left open", "sleep 20 & echo started", 3),
        hook_case("invalid UTF-8", "printf 'ok\\n\\377\\376 bad\\n'; exit 1", 30),
        raw_hook_case(
            "two scripts, second fails",
            "    - location: scripts/a.sh\n    - location: scripts/b.sh\n",
            vec![
                script("scripts/a.sh", "#!/bin/bash\necho a ok\n"),
                script("scripts/b.sh", "#!/bin/bash\necho b fails >&2; exit 5\n"),
            ],
        ),
    ];

    // Install.
    let files_to = |dir: &str| format!("files:\n  - source: site\n    destination: {INSTANCE_ROOT}/{dir}\n");
    let site = || vec![file("site/index.html", "new\n"), file("site/other.txt", "other\n")];
    for (name, dir, appspec, deployment, planted) in [
        ("appspec RETAIN, deployment OVERWRITE", "fe1", "file_exists_behavior: RETAIN\n", Some("OVERWRITE"), true),
        ("appspec OVERWRITE, deployment default", "fe2", "file_exists_behavior: OVERWRITE\n", None, true),
        ("appspec OVERWRITE, deployment RETAIN", "fe3", "file_exists_behavior: OVERWRITE\n", Some("RETAIN"), true),
        ("no appspec setting, deployment RETAIN", "fe4", "", Some("RETAIN"), true),
        ("DISALLOW", "fe5", "", None, true),
    ] {
        let mut c = install_case(name, dir, &format!("{appspec}{}", files_to(dir)), site());
        c.file_exists_behavior = deployment;
        if planted {
            c.planted.push((format!("{dir}/index.html"), "planted\n"));
        }
        cases.push(c);
    }
    // DISALLOW on the 16th of 30 files: the agent checks all before copying any.
    let many: Vec<Entry> = (1..=30)
        .map(|i| Entry::File(Box::leak(format!("site/f{i:02}.txt").into_boxed_str()), format!("{i}\n").into_bytes(), 0o644))
        .collect();
    let mut c = install_case("DISALLOW before any copy", "many", &files_to("many"), many);
    c.planted.push(("many/f16.txt".into(), "planted\n"));
    cases.push(c);
    cases.push(install_case(
        "duplicate destinations",
        "dup",
        &format!(
            "files:\n  - source: a/same.txt\n    destination: {INSTANCE_ROOT}/dup\n  - source: b/same.txt\n    destination: {INSTANCE_ROOT}/dup\n"
        ),
        vec![file("a/same.txt", "a\n"), file("b/same.txt", "b\n")],
    ));
    cases.push(install_case(
        "symlinks",
        "links",
        &files_to("links"),
        vec![
            file("site/real.txt", "real\n"),
            Entry::Dir("site/dir"),
            file("site/dir/inner.txt", "inner\n"),
            Entry::Link("site/link.txt", "real.txt"),
            Entry::Link("site/dirlink", "dir"),
        ],
    ));
    cases.push(install_case(
        "modes",
        "modes",
        &files_to("modes"),
        vec![Entry::File("site/secret.env", b"k=v\n".to_vec(), 0o600), script("site/run.sh", "#!/bin/sh\n")],
    ));
    // An appspec the agent refuses: which event reports it, and with what.
    let mut invalid = install_case("invalid appspec", "invalid", &files_to("invalid"), site());
    invalid.appspec = invalid.appspec.replace("version: 0.0", "version: 1.0");
    cases.push(invalid);

    // Last, as every later deployment would fail at ApplicationStop: the
    // hook of the last revision installed successfully, not the new one's.
    let mut stop = install_case(
        "an ApplicationStop hook, installed",
        "stop",
        &format!("{}hooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n", files_to("stop")),
        vec![
            file("site/index.html", "stop\n"),
            script("scripts/stop.sh", "#!/bin/bash\necho \"stopping the old revision\" >&2\nexit 9\n"),
        ],
    );
    stop.tree = Some("stop".into());
    cases.push(stop);
    cases.push(install_case("the next deployment runs it", "after-stop", &files_to("after-stop"), site()));
    cases
}

/// The bundle of a case, as a zip with unix modes and symlinks.
fn bundle(case: &Case) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = |mode: u32| zip::write::SimpleFileOptions::default().unix_permissions(mode);
    zip.start_file("appspec.yml", opts(0o644)).unwrap();
    zip.write_all(case.appspec.as_bytes()).unwrap();
    for e in &case.files {
        match e {
            Entry::File(p, bytes, mode) => {
                zip.start_file(*p, opts(*mode)).unwrap();
                zip.write_all(bytes).unwrap();
            }
            Entry::Link(p, target) => zip.add_symlink(*p, *target, opts(0o777)).unwrap(),
            Entry::Dir(p) => zip.add_directory(*p, opts(0o755)).unwrap(),
        }
    }
    zip.finish().unwrap().into_inner()
}

/// What one side reported and installed for one case.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Outcome {
    status: String,
    marker: Option<bool>,
    events: Vec<String>,
    tree: BTreeMap<String, String>,
}

/// One side: a stack and where its (single) instance's INSTANCE_ROOT is.
struct Side {
    stack: Stack,
    label: &'static str,
}

impl Side {
    fn start(agent: AgentMode, label: &'static str) -> Side {
        let stack = Stack::start_with(StackOptions { instances: 1, agent, step_delay: Duration::ZERO, ..Default::default() });
        Side { stack, label }
    }

    /// Where INSTANCE_ROOT/`rel` of the instance is on this machine.
    fn instance_path(&self, rel: &str) -> PathBuf {
        let abs = format!("{INSTANCE_ROOT}/{rel}");
        if let Some(agent) = self.stack.agents().first() {
            return agent.instance_path(&abs);
        }
        let group = self.stack.emulator_work_dir().join(self.stack.deployment_group());
        let instance = std::fs::read_dir(&group).ok().and_then(|mut d| d.next()).map(|e| e.unwrap().path());
        // Before the first deployment the emulated instance has no directory yet.
        instance.unwrap_or_else(|| group.join("pending")).join(abs.trim_start_matches('/'))
    }

    /// The paths this side's reports mention that the other side's cannot.
    fn normalise(&self, text: &str, id: &str, group_id: &str) -> String {
        let mut t = text.replace(id, "{deployment}").replace(group_id, "{group}");
        if let Some(agent) = self.stack.agents().first() {
            t = t.replace(&agent.dir.join("root").display().to_string(), "{root}");
        }
        t = t.replace("/opt/codedeploy-agent/deployment-root", "{root}");
        t.replace(&self.stack.emulator_work_dir().display().to_string(), "{work}")
    }

    fn deploy(&self, case: &Case, n: usize) -> Outcome {
        for (rel, text) in &case.planted {
            let p = self.instance_path(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let key = format!("differential/{n:02}.zip");
        let stack = &self.stack;
        let bytes = bundle(case);
        let (id, status, group_id) = stack.block_on(async {
            let put = stack.s3_as_prod().put_object().bucket(stack.bucket()).key(&key).body(bytes.into()).send().await.unwrap();
            let cd = stack.codedeploy();
            let location = aws_sdk_codedeploy::types::S3Location::builder()
                .bucket(stack.bucket())
                .key(&key)
                .bundle_type(aws_sdk_codedeploy::types::BundleType::Zip)
                .e_tag(put.e_tag().unwrap().trim_matches('"'))
                .build();
            let revision = aws_sdk_codedeploy::types::RevisionLocation::builder()
                .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::S3)
                .s3_location(location)
                .build();
            let mut create = cd
                .create_deployment()
                .application_name(stack.application())
                .deployment_group_name(stack.deployment_group())
                .revision(revision);
            if let Some(b) = case.file_exists_behavior {
                create = create.file_exists_behavior(b.into());
            }
            let id = create.send().await.unwrap().deployment_id().unwrap().to_string();
            loop {
                let info = cd.get_deployment().deployment_id(&id).send().await.unwrap().deployment_info().unwrap().clone();
                if info.complete_time().is_some() {
                    let group = cd
                        .get_deployment_group()
                        .application_name(stack.application())
                        .deployment_group_name(stack.deployment_group())
                        .send()
                        .await
                        .unwrap();
                    let group_id = group.deployment_group_info().unwrap().deployment_group_id().unwrap().to_string();
                    break (id, info.status().unwrap().as_str().to_string(), group_id);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let events = stack.block_on(async {
            let cd = stack.codedeploy();
            let ids = cd.list_deployment_targets().deployment_id(&id).send().await.unwrap().target_ids().to_vec();
            let t = cd.get_deployment_target().deployment_id(&id).target_id(&ids[0]).send().await.unwrap();
            let t = t.deployment_target().unwrap().instance_target().unwrap().clone();
            t.lifecycle_events()
                .iter()
                .map(|e| {
                    let d = e.diagnostics();
                    let text = |s: Option<&str>| self.normalise(s.unwrap_or(""), &id, &group_id);
                    format!(
                        "{} {} [{}] script={:?} message={:?} logTail={:?}",
                        e.lifecycle_event_name().unwrap_or(""),
                        e.status().map(|s| s.as_str()).unwrap_or(""),
                        d.and_then(|d| d.error_code()).map(|c| c.as_str()).unwrap_or(""),
                        text(d.and_then(|d| d.script_name())),
                        text(d.and_then(|d| d.message())),
                        text(d.and_then(|d| d.log_tail())),
                    )
                })
                .collect()
        });
        // The whole instance root, so what this install removed of the
        // previous one is compared too.
        let tree = case.tree.as_ref().map(|_| snapshot(&self.instance_path(""))).unwrap_or_default();
        let marker = case.marker.map(|m| {
            let base = match self.stack.agents().first() {
                Some(agent) => agent.dir.join("root"),
                None => self.stack.emulator_work_dir().to_path_buf(),
            };
            let tail = format!("{id}/deployment-archive/{m}");
            walk(&base).iter().any(|p| p.to_string_lossy().ends_with(&tail))
        });
        Outcome { status, marker, events, tree }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every entry under `root`: relative path → type, mode and content or target.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p.clone());
                format!("dir {mode:o}")
            } else {
                format!("file {mode:o} {:?}", String::from_utf8_lossy(&std::fs::read(&p).unwrap()))
            };
            out.insert(rel, what);
        }
    }
    out
}

#[test]
fn the_emulators_hook_runner_does_what_the_real_agent_does() {
    let agent = Side::start(AgentMode::Real, "agent");
    let emulated = Side::start(AgentMode::Emulated, "emulator");
    let cases = cases();
    let mut differences = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let a = agent.deploy(case, n);
        let e = emulated.deploy(case, n);
        if std::env::var_os("FERRY_DIFFERENTIAL_SHOW").is_some() {
            eprintln!("=== {}: {} {:?}\n{}\n{:?}", case.name, a.status, a.marker, a.events.join("\n"), a.tree);
        }
        if a != e {
            let mut d = format!("--- {} ({} vs {})\n", case.name, agent.label, emulated.label);
            if a.status != e.status {
                d.push_str(&format!("  status: {} vs {}\n", a.status, e.status));
            }
            if a.marker != e.marker {
                d.push_str(&format!("  marker {:?}: {:?} vs {:?}\n", case.marker, a.marker, e.marker));
            }
            for (x, y) in a.events.iter().zip(&e.events) {
                if x != y {
                    d.push_str(&format!("  agent:    {x}\n  emulator: {y}\n"));
                }
            }
            if a.tree != e.tree {
                d.push_str(&format!("  tree, agent:    {:?}\n  tree, emulator: {:?}\n", a.tree, e.tree));
            }
            differences.push(d);
        }
    }
    eprintln!("{} cases, {} differ", cases.len(), differences.len());
    assert!(differences.is_empty(), "{} of {} cases differ:\n{}", differences.len(), cases.len(), differences.join(""));
}
