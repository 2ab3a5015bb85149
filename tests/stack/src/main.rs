//! `ferry-test-stack up`: the test stack as a long-running process, for the
//! demo and for poking at ferry by hand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ferry_test_stack::{AgentMode, Stack, StackOptions};

const USAGE: &str = "\
usage: ferry-test-stack up [--instances N] [--step-delay-ms N] [--agent emulated|real]
                           [--s3 moto|localstack]
                           [--env-file FILE] [--config FILE [--env-name NAME]]
       ferry-test-stack --help

Starts moto and the CodeDeploy emulator on loopback with the two accounts laid
out, prints `ferry-test-stack ready`, and runs until SIGINT/SIGTERM/SIGHUP. If
moto dies meanwhile, it says so (which server, how, its log) and exits 1.
moto comes from the repository's .venv (scripts/setup-venv makes it) or
$FERRY_MOTO_SERVER.

  --instances N       instances in the deployment group (default 1)
  --step-delay-ms N   emulator time per lifecycle step (default 200)
  --agent real        one real CodeDeploy agent process per instance, registered
                      as an on-premises instance (needs scripts/setup-agent);
                      default: the emulator's own hook runner (emulated)
  --s3 localstack     the release bucket in LocalStack's S3 (needs
                      scripts/setup-localstack), not moto's (default moto)
  --env-file FILE     write `export AWS_...` lines ferry needs, for `source`
  --config FILE       write a ferry.toml pointing at the stack
  --env-name NAME     the [env.NAME] in that ferry.toml (default demo)";

struct Args {
    opts: StackOptions,
    env_file: Option<PathBuf>,
    config: Option<PathBuf>,
    env_name: String,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(argv) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("ferry-test-stack: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut stack = match Stack::try_start_with(args.opts) {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("ferry-test-stack: cannot start the stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.env_file {
        stack.write_env_file(path);
    }
    if let Some(path) = &args.config
        && let Err(e) = std::fs::write(path, stack.config_toml(&args.env_name))
    {
        eprintln!("ferry-test-stack: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("moto (STS, IAM, S3): {}", stack.moto_endpoint());
    println!("S3 (release bucket): {}", stack.s3_endpoint());
    println!("CodeDeploy emulator: {}", stack.codedeploy_endpoint());
    println!("role:                {}", stack.role_arn());
    println!("bucket:              {}", stack.bucket());
    println!("deployment group:    {}/{}", stack.application(), stack.deployment_group());
    println!("moto log:            {}", stack.moto_log().display());
    println!("moto pid:            {}", stack.moto_pid());
    println!("emulator work dir:   {}", stack.emulator_work_dir().display());
    for agent in stack.agents() {
        println!("agent {}:        {} (log {})", agent.name, agent.dir.display(), agent.log_path().display());
    }
    // Scripts wait for exactly this line.
    println!("ferry-test-stack ready");
    let code = loop {
        if stack.block_on(stop_signal_within(Duration::from_millis(500))) {
            eprintln!("ferry-test-stack: stopping");
            break ExitCode::SUCCESS;
        }
        if let Some(dead) = stack.dead_server() {
            eprintln!("ferry-test-stack: {dead}. Stopping the rest of the stack.");
            break ExitCode::FAILURE;
        }
    };
    drop(stack);
    code
}

/// Whether SIGINT, SIGTERM or SIGHUP came within `wait`. The handlers stay
/// installed from the first call on, so a signal between two calls is kept
/// for the next.
async fn stop_signal_within(wait: Duration) -> bool {
    use std::sync::OnceLock;
    use tokio::signal::unix::{Signal, SignalKind, signal};
    use tokio::sync::Mutex;
    static SIGNALS: OnceLock<Mutex<[Signal; 3]>> = OnceLock::new();
    let signals = SIGNALS.get_or_init(|| {
        let on = |kind| signal(kind).expect("signal handler");
        Mutex::new([on(SignalKind::interrupt()), on(SignalKind::terminate()), on(SignalKind::hangup())])
    });
    let mut s = signals.lock().await;
    let [int, term, hup] = &mut *s;
    tokio::select! {
        _ = int.recv() => true,
        _ = term.recv() => true,
        _ = hup.recv() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

fn parse(argv: Vec<String>) -> Result<Args, String> {
    let mut it = argv.into_iter();
    match it.next().as_deref() {
        Some("up") => {}
        None => return Err("a command is required".into()),
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let mut args = Args {
        // Slow enough that a person watching the demo sees each step.
        opts: StackOptions { step_delay: Duration::from_millis(200), ..StackOptions::default() },
        env_file: None,
        config: None,
        env_name: "demo".into(),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--instances" => args.opts.instances = number(&flag, &value()?)?,
            "--step-delay-ms" => args.opts.step_delay = Duration::from_millis(number(&flag, &value()?)?),
            "--agent" => {
                args.opts.agent = match value()?.as_str() {
                    "real" => AgentMode::Real,
                    "emulated" => AgentMode::Emulated,
                    other => return Err(format!("--agent: {other:?} is neither real nor emulated")),
                }
            }
            "--s3" => {
                args.opts.localstack_s3 = match value()?.as_str() {
                    "localstack" => true,
                    "moto" => false,
                    other => return Err(format!("--s3: {other:?} is neither moto nor localstack")),
                }
            }
            "--env-file" => args.env_file = Some(value()?.into()),
            "--config" => args.config = Some(value()?.into()),
            "--env-name" => args.env_name = value()?,
            "--bucket" => args.opts.bucket = value()?,
            "--external-id" => args.opts.external_id = Some(value()?),
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    if args.opts.instances == 0 {
        return Err("--instances must be at least 1".into());
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v:?}"))
}
