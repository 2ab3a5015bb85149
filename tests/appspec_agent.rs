//! `ferry check` against the CodeDeploy agent's own appspec parser.
//!
//! Every `tests/appspec-corpus/cases/*.yml` is one appspec, judged twice
//! over the same bundle (built here, see [`bundle`]): by `ferry check`, and
//! by the agent's Ruby code (v1.8.1, `ApplicationSpecification.parse` and
//! the Installer's planning, driven by `tests/appspec_agent.rb` on the
//! machine's Ruby ≥ 3.1, as current AMIs ship). The test fails on:
//!
//! - an appspec ferry accepts and the agent refuses (a release that would
//!   fail on every instance);
//! - an appspec ferry refuses and the agent runs, unless the case says why
//!   ferry is stricter on purpose (`# ferry: stricter: <why>`);
//! - a `# ferry: stricter:` case where the two agree (the mark is stale);
//! - a `# ferry says: <text>` case whose refusal does not contain the text.
//!
//! Each case starts with `# probes: <what it probes>`.
//!
//! Needs `ruby` (with Psych 4) and the agent's source, which
//! `scripts/setup-agent` installs and finds: `../shared/third_party/
//! aws-codedeploy-agent` beside the repository, else `$FERRY_AGENT_SRC`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One corpus file and what its header says.
struct Case {
    path: PathBuf,
    name: String,
    stricter: Option<String>,
    says: Option<String>,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out: Vec<Case> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let header = |key: &str| {
                text.trim_start_matches('\u{feff}')
                    .lines()
                    .take_while(|l| l.starts_with('#'))
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")).map(str::to_string))
            };
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(header("probes").is_some(), "{name}: a corpus case starts with `# probes: <what>`");
            Case { stricter: header("ferry: stricter"), says: header("ferry says"), name, path }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The bundle every case is judged against: scripts with and without exec
/// bits and shebangs, a CRLF script, a site, a 0600 file, an empty directory.
fn bundle(dir: &Path) {
    let files: [(&str, &str, u32); 9] = [
        ("scripts/a.sh", "#!/bin/bash\necho a\n", 0o755),
        ("scripts/b.sh", "#!/bin/bash\necho b\n", 0o755),
        ("scripts/plain.sh", "#!/bin/sh\necho plain\n", 0o644),
        ("scripts/noshebang.sh", "echo no shebang\n", 0o755),
        ("scripts/run.py", "#!/usr/bin/env python3\nprint('hi')\n", 0o755),
        ("scripts/crlf.sh", "#!/bin/bash\r\necho crlf\r\n", 0o755),
        ("site/index.html", "<h1>hi</h1>\n", 0o644),
        ("site/css/app.css", "h1 {}\n", 0o644),
        ("config/app.env", "SECRET=1\n", 0o600),
    ];
    for (name, text, mode) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::create_dir_all(dir.join("empty")).unwrap();
}

fn agent_source(repo: &Path) -> PathBuf {
    let beside = repo.join("../shared/third_party/aws-codedeploy-agent");
    let found = [Some(beside.clone()), std::env::var_os("FERRY_AGENT_SRC").map(PathBuf::from)]
        .into_iter()
        .flatten()
        .find(|p| p.join("lib/instance_agent/plugins/codedeploy/application_specification").is_dir());
    found.unwrap_or_else(|| {
        panic!(
            "the CodeDeploy agent's source is neither at {} nor at $FERRY_AGENT_SRC: run scripts/setup-agent, \
             which finds or fetches it (and installs Debian's ruby)",
            beside.display()
        )
    })
}

/// The agent's verdict per case file: `None` when it runs, else its error.
fn agent_verdicts(repo: &Path, agent: &Path, bundle: &Path, cases: &[Case]) -> Vec<Option<String>> {
    let mut cmd = Command::new("ruby");
    cmd.arg(repo.join("tests/appspec_agent.rb")).arg(agent).arg(bundle).args(cases.iter().map(|c| &c.path));
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run `ruby` ({e}): run scripts/setup-agent, which installs Debian's ruby and the agent's gems")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the agent's driver failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), cases.len(), "one verdict per case:\n{stdout}");
    lines
        .iter()
        .zip(cases)
        .map(|(v, c)| {
            assert_eq!(v["file"].as_str(), c.path.to_str());
            (!v["ok"].as_bool().unwrap()).then(|| v["error"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// ferry's verdict: `None` when `ferry check` passes, else its output.
fn ferry_verdict(app: &Path, case: &Case) -> Option<String> {
    std::fs::copy(&case.path, app.join("appspec.yml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).arg("check").arg(app).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => None,
        Some(1) => Some(text),
        other => panic!("{}: `ferry check` ended with {other:?}:\n{text}", case.name),
    }
}

#[test]
fn ferry_check_agrees_with_the_codedeploy_agents_appspec_parser() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = cases(&repo.join("tests/appspec-corpus/cases"));
    assert!(corpus.len() >= 100, "the corpus has {} cases; it should have at least 100", corpus.len());
    let agent = agent_source(repo);
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    bundle(&app);
    let agent_says = agent_verdicts(repo, &agent, &app, &corpus);

    let (mut agree, mut stricter, mut failures) = (0, 0, Vec::new());
    for (case, agent_refusal) in corpus.iter().zip(agent_says) {
        let ferry_refusal = ferry_verdict(&app, case);
        let name = &case.name;
        match (&ferry_refusal, &agent_refusal, &case.stricter) {
            (None, Some(why), _) => failures.push(format!("{name}: ferry accepts it, the agent refuses it: {why}")),
            (Some(said), None, None) => failures.push(format!(
                "{name}: ferry refuses it, the agent runs it, and the case does not say why ferry is stricter:\n{said}"
            )),
            (Some(_), None, Some(_)) => stricter += 1,
            (_, _, Some(why)) => failures.push(format!("{name}: marked stricter ({why}) but ferry and the agent agree")),
            _ => agree += 1,
        }
        if let (Some(says), Some(said)) = (&case.says, &ferry_refusal)
            && !said.contains(says.as_str())
        {
            failures.push(format!("{name}: ferry's refusal does not say `{says}`:\n{said}"));
        }
        if let (Some(says), None) = (&case.says, &ferry_refusal) {
            failures.push(format!("{name}: expected ferry to refuse it saying `{says}`"));
        }
    }
    println!(
        "appspec corpus: {} cases; ferry and the agent agree on {agree}; ferry is stricter on purpose on {stricter}",
        corpus.len()
    );
    assert!(failures.is_empty(), "{} disagreement(s):\n\n{}", failures.len(), failures.join("\n\n"));
}
