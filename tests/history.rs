//! `ferry history` read by a person and filtered as `aws deploy
//! list-deployments` filters (issue 26 item 11): a column header, each
//! deployment's kind (release, rollback, wave) and description, and
//! `--status` / `--since`.

mod common;

use common::{FERRY, Stack, app_tree, run};

/// `ferry [args…] --env production --config CONFIG`.
fn ferry(stack: &Stack, config: &std::path::Path, args: &[&str]) -> common::Run {
    run(stack.ferry_command(FERRY).args(args).args(["--env", "production", "--config"]).arg(config))
}

/// The rows of `ferry history --output json`.
fn rows(out: &common::Run) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "history_entry")
        .collect()
}

#[test]
fn history_has_a_header_kinds_and_descriptions_and_filters_by_status_and_time() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let good = app_tree(&dir.path().join("good"), "exit 0");
    let bad = app_tree(&dir.path().join("bad"), "echo broken >&2; exit 1");
    let v1 = ferry(&stack, &config, &["release", good.to_str().unwrap(), "--description", "JIRA-7 first"]);
    assert_eq!(v1.code, 0, "{}", v1.all());
    let v2 = ferry(&stack, &config, &["release", bad.to_str().unwrap(), "--rollback-on", "never"]);
    assert_eq!(v2.code, 3, "{}", v2.all());
    let back = ferry(&stack, &config, &["rollback"]);
    assert_eq!(back.code, 0, "{}", back.all());
    let (v1, v2) = (v1.stdout.trim(), v2.stdout.trim());

    // Text: rows on stdout (newest first), the header over them on stderr.
    let text = ferry(&stack, &config, &["history", "--progress", "plain"]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stderr.lines().any(|l| l == "CREATED\tDEPLOYMENT\tSTATUS\tBUILD\tSHA256\tCREATOR\tKEY\tKIND\tDESCRIPTION"),
        "{}",
        text.stderr
    );
    let lines: Vec<Vec<&str>> = text.stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    assert!(lines.iter().all(|cols| cols.len() == 9), "nine columns:\n{}", text.stdout);
    let kinds: Vec<&str> = lines.iter().map(|cols| cols[7]).collect();
    assert_eq!(kinds, ["rollback", "release", "release"], "{}", text.stdout);
    let first = lines.iter().find(|cols| cols[1] == v1).unwrap();
    assert!(first[8].starts_with("JIRA-7 first") && first[8].contains("ferry release"), "{first:?}");

    // --status, repeatable or comma-separated, in any case.
    let failed = ferry(&stack, &config, &["history", "--status", "failed", "--output", "json"]);
    let ids: Vec<String> = rows(&failed).iter().map(|r| r["deployment_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, [v2], "{}", failed.all());
    assert_eq!(rows(&failed)[0]["kind"], "release");
    let both = ferry(&stack, &config, &["history", "--status", "Failed,Succeeded", "--output", "json"]);
    assert_eq!(rows(&both).len(), 3, "{}", both.all());
    let refused = ferry(&stack, &config, &["history", "--status", "broken"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("not a CodeDeploy deployment state"), "{}", refused.stderr);

    // --since: a duration back from now, or a date.
    let recent = ferry(&stack, &config, &["history", "--since", "1h", "--output", "json"]);
    assert_eq!(rows(&recent).len(), 3, "{}", recent.all());
    let future = ferry(&stack, &config, &["history", "--since", "2999-01-01", "--progress", "plain"]);
    assert_eq!((future.code, future.stdout.as_str()), (0, ""), "{}", future.all());
    assert!(future.stderr.contains("has no deployments that match --status/--since"), "{}", future.stderr);
    let bare = ferry(&stack, &config, &["history", "--since", "7"]);
    assert_eq!(bare.code, 1, "a bare number has no unit:\n{}", bare.all());
}
