//! Completions and man pages as a shell and `man` get them (issue 26 item
//! 13): bash completes `--env` with the environments of the ferry.toml in
//! the directory it is typed in, hidden test flags are never offered, and
//! `ferry man --out-dir` writes the page of every subcommand the top page
//! cites.

mod common;

use std::path::Path;
use std::process::Command;

use common::{FERRY, OFFLINE_CONFIG};

/// `ferry completions bash` sourced in bash, in `cwd`, completing `words`
/// (the last one being typed); the candidates, one a line.
fn bash_complete(cwd: &Path, words: &[&str]) -> String {
    let script = Command::new(FERRY).args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success(), "{}", String::from_utf8_lossy(&script.stderr));
    std::fs::write(cwd.join("ferry.bash"), &script.stdout).unwrap();
    let bin_dir = Path::new(FERRY).parent().unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
    let call = format!(
        "source ./ferry.bash; COMP_WORDS=({}); COMP_CWORD={}; _ferry ferry '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &call])
        .current_dir(cwd)
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
        .env_remove("FERRY_CONFIG")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_env_from_the_ferry_toml_at_hand_and_offers_no_hidden_flag() {
    let dir = tempfile::tempdir().unwrap();
    let staging = OFFLINE_CONFIG.replace("[env.production]", "[env.staging]");
    std::fs::write(dir.path().join("ferry.toml"), format!("{OFFLINE_CONFIG}\n{staging}")).unwrap();

    assert_eq!(bash_complete(dir.path(), &["ferry", "release", "--env", ""]), "production\nstaging\n");
    assert_eq!(bash_complete(dir.path(), &["ferry", "status", "-e", "st"]), "staging\n");
    // Read when asked: a new environment is offered without a new script.
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG.replace("production", "canary")).unwrap();
    assert_eq!(bash_complete(dir.path(), &["ferry", "rollback", "--env", ""]), "canary\n");

    let flags = bash_complete(dir.path(), &["ferry", "release", "--"]);
    assert!(flags.lines().any(|f| f == "--no-wait") && flags.lines().any(|f| f == "--env"), "{flags}");
    for hidden in ["--unsafe-session-seconds", "--wait", "--env-names"] {
        assert!(!flags.lines().any(|f| f == hidden), "{hidden} is offered:\n{flags}");
    }
}

#[test]
fn env_names_of_a_missing_or_broken_ferry_toml_are_nothing_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let names = |dir: &Path| Command::new(FERRY).args(["completions", "--env-names"]).current_dir(dir).output().unwrap();
    let none = names(dir.path());
    assert!(none.status.success() && none.stdout.is_empty() && none.stderr.is_empty(), "{none:?}");
    std::fs::write(dir.path().join("ferry.toml"), "[env.production\n").unwrap();
    let broken = names(dir.path());
    assert!(broken.status.success() && broken.stdout.is_empty() && broken.stderr.is_empty(), "{broken:?}");
}

#[test]
fn man_out_dir_writes_every_page_the_top_page_cites() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(FERRY).args(["man", "--out-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let top = std::fs::read_to_string(dir.path().join("ferry.1")).unwrap();
    let cited: Vec<String> = top
        .split("ferry\\-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)").map(|(name, _)| name.replace("\\-", "-")))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert!(cited.len() > 15 && cited.contains(&"release".to_string()), "{cited:?}");
    for name in &cited {
        let page = std::fs::read_to_string(dir.path().join(format!("ferry-{name}.1")))
            .unwrap_or_else(|e| panic!("ferry.1 cites ferry-{name}(1), which was not written: {e}"));
        assert!(page.contains(".SH \"EXIT STATUS\""), "ferry-{name}.1");
        // `help` takes a subcommand's name and nothing else.
        assert!(name == "help" || page.contains(".SH OPTIONS"), "ferry-{name}.1");
    }
    let one = Command::new(FERRY).args(["man", "release"]).output().unwrap();
    assert_eq!(one.stdout, std::fs::read(dir.path().join("ferry-release.1")).unwrap());
    let unknown = Command::new(FERRY).args(["man", "relase"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not a ferry subcommand"), "{unknown:?}");
}
