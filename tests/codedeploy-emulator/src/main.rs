//! `codedeploy-emulator`: runs the emulator on a loopback port for scripts
//! and manual use. Prints one `listening` line on stdout when ready.

use std::process::ExitCode;
use std::time::Duration;

use codedeploy_emulator::{Config, serve};

const USAGE: &str = "usage: codedeploy-emulator [--port N] [--s3-endpoint URL] [--step-delay-ms N] [--minute-ms N] [--lambda-endpoint URL] [--ecs-endpoint URL] [--instances N] [--work-dir DIR] [--region R] [--account-id ID] [--rate-limit OP=PER_SECOND]... [--page-size N]
       [--service-model FILE] [--identity-policy FILE [--principal-arn ARN] [--exempt-access-key ID]...]

--service-model checks every answer against botocore's CodeDeploy model
(service-2.json or .json.gz) and logs what does not fit. --identity-policy
enforces that IAM policy document on every caller but the exempt access keys;
--principal-arn is the caller named in AccessDenied messages.

S3 credentials for bundle downloads come from EMULATOR_S3_ACCESS_KEY_ID and
EMULATOR_S3_SECRET_ACCESS_KEY, else from the default AWS credential chain.";

fn parse(args: Vec<String>) -> Result<(u16, Config), String> {
    let mut config = Config::default();
    let mut port = 0u16;
    let mut policy_file: Option<String> = None;
    let mut principal = "arn:aws:iam::123456789012:user/emulator-caller".to_string();
    let mut exempt = std::collections::BTreeSet::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: '{v}' is not a whole number"));
        match flag.as_str() {
            "--port" => port = number(value()?)?.try_into().map_err(|_| "--port: out of range".to_string())?,
            "--s3-endpoint" => config.s3_endpoint = Some(value()?),
            "--step-delay-ms" => config.step_delay = Duration::from_millis(number(value()?)?),
            "--minute-ms" => config.minute = Duration::from_millis(number(value()?)?),
            "--lambda-endpoint" => config.lambda_endpoint = Some(value()?),
            "--ecs-endpoint" => config.ecs_endpoint = Some(value()?),
            "--instances" => config.default_instances = number(value()?)? as usize,
            "--work-dir" => config.work_dir = Some(value()?.into()),
            "--region" => config.region = value()?,
            "--account-id" => config.account_id = value()?,
            "--service-model" => config.service_model = Some(value()?.into()),
            "--identity-policy" => policy_file = Some(value()?),
            "--principal-arn" => principal = value()?,
            "--exempt-access-key" => {
                exempt.insert(value()?);
            }
            "--page-size" => config.page_size = number(value()?)?.max(1) as usize,
            "--rate-limit" => {
                let v = value()?;
                let (op, rate) = v.split_once('=').ok_or_else(|| format!("--rate-limit wants OP=PER_SECOND, got '{v}'"))?;
                let rate: f64 = rate.parse().map_err(|_| format!("--rate-limit: '{rate}' is not a number"))?;
                config.rate_limits.insert(op.to_string(), rate);
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if let Some(file) = policy_file {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("--identity-policy {file}: {e}"))?;
        config.identity_policy = Some(
            codedeploy_emulator::iam::IdentityPolicy::parse(&text, &principal, exempt)
                .map_err(|e| format!("--identity-policy {file}: {e}"))?,
        );
    }
    if let (Ok(id), Ok(secret)) = (std::env::var("EMULATOR_S3_ACCESS_KEY_ID"), std::env::var("EMULATOR_S3_SECRET_ACCESS_KEY")) {
        config.s3_credentials = Some((id, secret));
    }
    Ok((port, config))
}

fn main() -> ExitCode {
    let (port, config) = match parse(std::env::args().skip(1).collect()) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("codedeploy-emulator: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        eprintln!(
            "codedeploy-emulator: work dir {}",
            config.work_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(temporary)".into())
        );
        println!("codedeploy-emulator listening on http://{addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        tokio::select! {
            result = serve(listener, config) => result,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codedeploy-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
