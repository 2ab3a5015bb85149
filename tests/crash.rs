//! Crash consistency: ferry is SIGKILLed (no chance to clean up) at points
//! chosen by a seeded generator all through a release (bundling, upload
//! parts, CreateDeployment in flight, watching, the rollback of a failing
//! release), then the same command is run again, and the end state must
//! converge: the re-run ends as an uninterrupted run would (exit 0, or 7
//! for a release that fails and is rolled back), its receipt is truthful
//! (the SHA-256 of the bundle, its content key, a deployment CodeDeploy has
//! for that key in the state the receipt says), no multipart upload is left
//! open after the re-run, the bundle cache stays usable (never an entry
//! that fails a later release; an unchanged directory is reused), and the
//! group ends on the intended revision, deployed once: a run killed after
//! CreateDeployment leaves a deployment CodeDeploy finishes alone, and the
//! re-run follows that one (it still runs, or has just succeeded) instead
//! of deploying the revision again; only a deployment of it that failed or
//! was stopped is deployed anew. (A run that wrote its final receipt before
//! its kill point was a whole release: the next run is another release.)
//!
//! A kill point is "after the N-th JSON event line, plus D ms" (N = 0: D ms
//! after the start, while bundling). The seed is printed; replay with
//! `FERRY_CRASH_SEED=<seed>`. `FERRY_CRASH_POINTS` sets how many (default 50).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{FERRY, Run, Stack, StackOptions, assert_no_stack_secrets};
use faultproxy::{Chance, Fault, FaultProxy, Match, Rule};

/// xorshift64*: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Incompressible bytes, so the bundle goes up in parts.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Round `round`'s app: 17 MiB of its own noise (three parts), a
/// ValidateService hook that fails when `failing`.
fn app(dir: &Path, round: u64, failing: bool) -> PathBuf {
    let app = dir.join(format!("app-{round}"));
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::write(app.join("site/index.html"), format!("round {round}\n")).unwrap();
    std::fs::write(app.join("site/blob.bin"), noise(17 << 20, round + 1)).unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\nhooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
    )
    .unwrap();
    let script = app.join("scripts/validate.sh");
    std::fs::write(&script, format!("#!/bin/bash\nexit {}\n", u8::from(failing))).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    app
}

struct Release<'a> {
    stack: &'a Stack,
    config: PathBuf,
    cache: PathBuf,
    receipt: PathBuf,
}

impl Release<'_> {
    fn command(&self, app: &Path) -> Command {
        let mut cmd = self.stack.ferry_command(FERRY);
        cmd.args(["--output", "json", "release"])
            .arg(app)
            .args(["--env", "production", "--timeout", "3m", "--rollback-on", "failure", "--config"])
            .arg(&self.config)
            .arg("--receipt")
            .arg(&self.receipt)
            .env("XDG_CACHE_HOME", &self.cache);
        cmd
    }

    /// Runs to the end.
    fn run(&self, app: &Path) -> Run {
        common::run(&mut self.command(app))
    }

    /// Runs and SIGKILLs it `delay` after the `after`-th JSON line (or
    /// after the start, for 0). The phase it was in (the last event seen),
    /// and its output; `None` for the phase when it ended first.
    fn kill_at(&self, app: &Path, after: usize, delay: Duration) -> (Option<String>, Run) {
        let mut child = self.command(app).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (rx, reader) = read_events(child.stdout.take().unwrap());
        let mut last = "start".to_string();
        let mut reached = after == 0;
        for _ in 0..after {
            match rx.recv() {
                Ok(event) => last = name(&event),
                Err(_) => break,
            }
            reached = true;
        }
        let mut phase = None;
        if reached {
            std::thread::sleep(delay);
            // Events that came during the delay move the phase on.
            while let Ok(event) = rx.try_recv() {
                last = name(&event);
            }
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                phase = Some(last);
            }
        }
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let stdout = reader.join().unwrap();
        (phase, Run { code: status.code().unwrap_or(-1), stdout, stderr })
    }
}

/// Reads ferry's stdout on its own thread: each line as it comes, parsed
/// (`null` when it is not JSON), and all of it once ferry ends.
fn read_events(stdout: std::process::ChildStdout) -> (mpsc::Receiver<serde_json::Value>, std::thread::JoinHandle<String>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default());
        }
        all
    });
    (rx, reader)
}

/// An event's name, empty for a line that is not one.
fn name(event: &serde_json::Value) -> String {
    event["event"].as_str().unwrap_or_default().to_string()
}

fn open_uploads(stack: &Stack) -> usize {
    stack.block_on(async {
        stack.s3_as_prod().list_multipart_uploads().bucket(stack.bucket()).send().await.unwrap().uploads().len()
    })
}

/// Every deployment of the group: id → (revision key, status, rollback id).
fn deployments(stack: &Stack) -> BTreeMap<String, (String, String, Option<String>)> {
    described(stack).into_iter().map(|(id, d)| (id, (d.key, d.status, d.rollback))).collect()
}

/// One deployment, as the checks need it.
#[derive(Clone, Debug)]
struct Described {
    key: String,
    status: String,
    rollback: Option<String>,
}

fn described(stack: &Stack) -> BTreeMap<String, Described> {
    let ids = common::deployment_ids(stack);
    stack.block_on(async {
        let mut out = BTreeMap::new();
        for id in ids {
            let info = stack.codedeploy().get_deployment().deployment_id(&id).send().await.unwrap();
            let info = info.deployment_info().unwrap();
            out.insert(
                id,
                Described {
                    key: info.revision().and_then(|r| r.s3_location()).and_then(|s| s.key()).unwrap_or_default().to_string(),
                    status: info.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    rollback: info.rollback_info().and_then(|r| r.rollback_deployment_id()).map(String::from),
                },
            );
        }
        out
    })
}

/// The deployments a run created or adopted.
fn followed_by(out: &Run) -> Vec<String> {
    ["deployment_created", "deployment_adopted"]
        .iter()
        .flat_map(|kind| out.events_of(kind))
        .filter_map(|e| e["deployment_id"].as_str().map(String::from))
        .collect()
}

/// Why the round's revision (`key`) was not deployed once, if it was not:
/// every deployment of it is one that a run which ended its release (the
/// re-run, or a run that wrote its final receipt before its kill point)
/// followed, or one that failed or was stopped (a re-run retries those). A killed run's
/// deployment that still ran or had just succeeded and that the next run
/// deployed over instead of following is the defect.
fn deployed_once(
    all: &BTreeMap<String, Described>,
    key: &str,
    followed: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    let of_key: Vec<(&String, &Described)> = all.iter().filter(|(_, d)| d.key == key).collect();
    let over: Vec<_> =
        of_key.iter().filter(|(id, d)| !followed.contains(*id) && !["Failed", "Stopped"].contains(&d.status.as_str())).collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "deployed {} times; a killed run's deployment was deployed over, not followed: {over:?}; runs that ended \
             followed {followed:?}",
            of_key.len()
        ))
    }
}

/// Waits until no deployment of the group is running (a killed run's goes on
/// without it), so each round starts from a settled group.
fn settle(stack: &Stack) {
    let active = ["Created", "Queued", "InProgress", "Baking", "Ready"];
    let mut running: Vec<String> =
        deployments(stack).into_iter().filter(|(_, (_, s, _))| active.contains(&s.as_str())).map(|(id, _)| id).collect();
    for _ in 0..3000 {
        running.retain(|id| {
            let info = stack.block_on(stack.codedeploy().get_deployment().deployment_id(id).send()).unwrap();
            info.deployment_info().and_then(|i| i.status()).is_some_and(|s| active.contains(&s.as_str()))
        });
        if running.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the group never settled: {running:?}");
}

#[test]
fn sigkill_at_seeded_points_then_the_same_command_converges() {
    let seed = std::env::var("FERRY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let points: usize = std::env::var("FERRY_CRASH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    eprintln!("crash test: FERRY_CRASH_SEED={seed} FERRY_CRASH_POINTS={points}");
    let mut rng = Rng(seed | 1);
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let release = release_in(&stack, dir.path());

    // A reference run: how many event lines a whole good release has.
    let reference = release.run(&app(dir.path(), 0, false));
    assert_eq!(reference.code, 0, "{}", reference.all());
    let names: Vec<String> = reference
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["event"].as_str().unwrap_or_default().to_string())
        .collect();
    // The line after which each stage starts (1-based counts of lines read).
    let at = |name: &str| names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no {name} in {names:?}")) + 1;
    let (upload, uploaded, created, finished) = (at("upload_started"), at("uploaded"), at("deployment_created"), at("finished"));
    let receipt_of = || -> serde_json::Value { serde_json::from_slice(&std::fs::read(&release.receipt).unwrap()).unwrap() };
    let mut good_key = receipt_of()["key"].as_str().unwrap().to_string();
    let mut runs = vec![reference];

    // phase → outcome → count.
    let mut figure: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut done = 0;
    let mut round = 0;
    let mut adopted = 0;
    while done < points {
        round += 1;
        // One round in four fails its ValidateService hook and is rolled back.
        let failing = round % 4 == 0;
        let app = app(dir.path(), round, failing);
        let chain = (1 + rng.below(4) as usize).min(points - done);
        // The deployments runs of this round that ended by themselves followed.
        let mut followed = std::collections::BTreeSet::new();
        // Each run of the round: where it ended, and what it created or adopted.
        let mut story = Vec::new();
        for _ in 0..chain {
            // A stage first (so the long watch does not take every point),
            // then a line in it and a delay after that line.
            let stages = if failing { 5 } else { 4 };
            let (after, delay_ms) = match rng.below(stages) {
                // Bundling (and assuming the role).
                0 => (0, rng.below(400)),
                // Between the parts of the upload.
                1 => (upload + rng.below((uploaded - upload) as u64) as usize, rng.below(40)),
                // CreateDeployment in flight, or just answered.
                2 => (uploaded, rng.below(60)),
                // Following the deployment.
                3 => (created + rng.below((finished - created) as u64) as usize, rng.below(80)),
                // A failing release: its failure and the rollback CodeDeploy runs.
                _ => (finished + rng.below(12) as usize, rng.below(80)),
            };
            let delay = Duration::from_millis(delay_ms);
            let (phase, out) = release.kill_at(&app, after, delay);
            done += 1;
            // A run that wrote its final receipt (killed after that, or not
            // at all) was a whole release: the next run is one of its own.
            if phase.is_none() || !out.events_of("receipt_written").is_empty() {
                followed.extend(followed_by(&out));
            }
            let (phase, outcome) = match phase {
                Some(p) => (p, "killed"),
                None => ("(ended first)".to_string(), "finished before the point"),
            };
            story.push(format!("{outcome} after {after} lines + {delay_ms} ms ({phase}): {:?}", followed_by(&out)));
            *figure.entry(phase).or_default().entry(outcome).or_default() += 1;
            runs.push(out);
        }
        let before = deployments(&stack);
        let last = release.run(&app);
        let want = if failing { 7 } else { 0 };
        assert_eq!(last.code, want, "round {round} (seed {seed}): the re-run did not converge:\n{}", last.all());

        // The receipt is truthful.
        let sha = last.events_of("bundle_ready")[0]["sha256"].as_str().unwrap().to_string();
        let receipt = receipt_of();
        let key = format!("releases/web/{sha}.zip");
        assert_eq!(receipt["sha256"], sha.as_str(), "round {round} (seed {seed}): {receipt}");
        assert_eq!(receipt["key"], key.as_str(), "round {round} (seed {seed}): {receipt}");
        let id = receipt["deployment_id"].as_str().expect("a deployment id").to_string();
        let now = deployments(&stack);
        let (deployed_key, status, rollback) = now.get(&id).cloned().expect("the receipt's deployment exists");
        assert_eq!(deployed_key, key, "round {round} (seed {seed})");
        if failing {
            assert_eq!(status, "Failed", "round {round} (seed {seed})");
            let rollback = rollback.expect("rolled back");
            assert_eq!(receipt["rollback_deployment_id"], rollback.as_str());
            assert_eq!(now[&rollback].1, "Succeeded", "round {round} (seed {seed}): the rollback");
        } else {
            assert_eq!(status, "Succeeded", "round {round} (seed {seed})");
            good_key = key.clone();
        }
        assert_eq!(receipt["outcome"], if failing { "rolled_back" } else { "succeeded" }, "{receipt}");

        // Nothing left open, and what the group runs is the intended revision.
        assert_eq!(open_uploads(&stack), 0, "round {round} (seed {seed}): a multipart upload is left open");
        settle(&stack);
        let settled = deployments(&stack);
        let newest_success = settled
            .iter()
            .filter(|(_, (_, status, _))| status == "Succeeded")
            .map(|(id, (k, _, _))| (id.clone(), k.clone()))
            .filter(|(id, _)| !before.contains_key(id) || before[id].1 != "Succeeded")
            .collect::<Vec<_>>();
        assert!(newest_success.iter().all(|(_, k)| *k == good_key), "round {round} (seed {seed}): {newest_success:?}");
        followed.extend(followed_by(&last));
        if let Err(why) = deployed_once(&described(&stack), &key, &followed) {
            panic!(
                "round {round} (seed {seed}): the intended revision was not deployed once: {why}\nits runs: \
                 {story:#?}\nthe re-run:\n{}",
                last.all()
            );
        }
        adopted += usize::from(!last.events_of("deployment_adopted").is_empty());
        runs.push(last);
    }

    // The cache is usable: the last round's unchanged directory is reused.
    let app_last = dir.path().join(format!("app-{round}"));
    let again = release.run(&app_last);
    let ready = &again.events_of("bundle_ready")[0];
    assert_eq!(ready["cached"].as_bool(), Some(true), "seed {seed}: the cache was left unusable: {}", again.all());
    let warnings: Vec<_> = runs
        .iter()
        .flat_map(|r| r.events_of("warning"))
        .filter(|w| w["message"].as_str().unwrap_or("").contains("did not hash"))
        .collect();
    runs.push(again);

    eprintln!("crash test figure (seed {seed}): {done} points over {round} rounds; phase killed in → outcome × count:");
    for (phase, outcomes) in &figure {
        eprintln!("  {phase:<24} {outcomes:?}");
    }
    eprintln!(
        "  re-runs converged and deployed once: {round}/{round}; re-runs that adopted a killed run's deployment: \
         {adopted}; cache entries found damaged and rebuilt: {}",
        warnings.len()
    );
    let all: Vec<&Run> = runs.iter().collect();
    assert_no_stack_secrets(&stack, &all);
}

/// Runs `cmd` and SIGKILLs it once `stop` holds for a JSON event line, or
/// once `also` holds (polled meanwhile); the events it printed, and its
/// output. Panics when it ends first.
fn kill_when(
    cmd: &mut Command,
    mut stop: impl FnMut(&serde_json::Value) -> bool,
    mut also: impl FnMut() -> bool,
) -> (Vec<serde_json::Value>, Run) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = common::drain(child.stderr.take().unwrap());
    let (rx, reader) = read_events(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(event) => {
                let hit = stop(&event);
                seen.push(event);
                if hit {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if also() => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                panic!("ferry ended before the kill point:\n{}{}", reader.join().unwrap(), stderr.join().unwrap());
            }
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let run = Run { code: status.code().unwrap_or(-1), stdout: reader.join().unwrap(), stderr: stderr.join().unwrap() };
    (seen, run)
}

/// A stack whose deployments take a while.
fn slow_stack() -> Stack {
    Stack::start_with(StackOptions { instances: 1, step_delay: Duration::from_millis(800), ..Default::default() })
}

/// The release the focused tests run, against `stack`, in `dir`.
fn release_in<'a>(stack: &'a Stack, dir: &Path) -> Release<'a> {
    Release { stack, config: stack.write_config(dir, "production"), cache: dir.join("cache"), receipt: dir.join("receipt.json") }
}

/// Issue 23: a chain of kills. Run 1 is killed while its CreateDeployment
/// is in flight (CodeDeploy made the deployment; the answer never came, so
/// only the run token in the pending record can find it); run 2 adopts that
/// deployment and is killed while following it; run 3 adopts the very same
/// deployment again, follows it to its end, and the revision is deployed
/// once.
#[test]
fn a_chain_of_killed_runs_adopts_one_deployment_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let stack = slow_stack();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), 23);
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["CreateDeployment"]), Chance::Always, Fault::StallMidBody)]);
    let app = app(dir.path(), 1, false);
    let r = release_in(&stack, dir.path());
    let release = || r.command(&app);

    // Run 1: killed once CodeDeploy holds the deployment whose answer stalls.
    let (_, first) = kill_when(
        release().env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()),
        |_| false,
        || proxy.stats().op("CreateDeployment") >= 1 && !common::deployment_ids(&stack).is_empty(),
    );
    assert!(first.events_of("deployment_created").is_empty(), "the answer was to be lost: {}", first.all());
    let made = common::deployment_ids(&stack);
    assert_eq!(made.len(), 1, "{made:?}");
    let d1 = made[0].clone();

    // Run 2: adopts it by run 1's token alone, and is killed following it.
    let (seen, second) = kill_when(&mut release(), |e| e["event"] == "deployment_adopted", || false);
    let adopted = seen.last().unwrap();
    assert_eq!(adopted["deployment_id"], d1.as_str(), "{}", second.all());
    assert!(adopted["reason"].as_str().unwrap().contains("killed before it ended"), "{adopted}");

    // Run 3: the record carried the id forward.
    let third = common::run(&mut release());
    assert_eq!(third.code, 0, "{}", third.all());
    let adopted = third.events_of("deployment_adopted");
    assert_eq!(adopted.len(), 1, "{}", third.all());
    assert_eq!(adopted[0]["deployment_id"], d1.as_str());
    assert!(third.events_of("deployment_created").is_empty(), "{}", third.all());
    let receipt: serde_json::Value = serde_json::from_slice(&std::fs::read(&r.receipt).unwrap()).unwrap();
    assert_eq!(receipt["deployment_id"], d1.as_str(), "{receipt}");
    assert_eq!(receipt["outcome"], "succeeded", "{receipt}");
    let all = described(&stack);
    assert_eq!(all.len(), 1, "deployed once: {all:?}");
    assert_eq!(all[&d1].status, "Succeeded");
    assert_eq!(proxy.stats().op("CreateDeployment"), 1, "runs 2 and 3 never sent CreateDeployment through the proxy either");
    assert!(
        std::fs::read_dir(r.cache.join("ferry/pending")).unwrap().next().is_none(),
        "run 3 ended by itself: its record is gone"
    );
    assert_no_stack_secrets(&stack, &[&first, &second, &third]);
}

/// Issue 23: a re-run is how people retry, so a killed run's deployment
/// that was stopped (or failed) is not adopted: the re-run deploys anew.
#[test]
fn a_killed_runs_stopped_deployment_is_deployed_anew_by_the_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let stack = slow_stack();
    let app = app(dir.path(), 1, false);
    let r = release_in(&stack, dir.path());
    let release = || r.command(&app);
    let (seen, first) = kill_when(&mut release(), |e| e["event"] == "deployment_created", || false);
    let d1 = seen.last().unwrap()["deployment_id"].as_str().unwrap().to_string();
    stack.block_on(stack.codedeploy().stop_deployment().deployment_id(&d1).send()).unwrap();
    common::wait_until("the deployment to stop", || described(&stack)[&d1].status == "Stopped");

    let again = common::run(&mut release());
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.events_of("deployment_adopted").is_empty(), "{}", again.all());
    let created = again.events_of("deployment_created");
    assert_eq!(created.len(), 1, "{}", again.all());
    assert_ne!(created[0]["deployment_id"], d1.as_str());
    assert_eq!(described(&stack).len(), 2);
    assert_no_stack_secrets(&stack, &[&first, &again]);
}
