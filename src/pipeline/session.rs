//! The environment's role, assumed as every command assumes it: the session
//! name, tags and source identity from the build's variables, and a report
//! of who ferry now is.

use aws_config::SdkConfig;

use crate::abort::{self, Guard, Phase};
use crate::assume::{self, AssumeOptions, Session, provenance};
use crate::config::Environment;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;
use crate::receipt::{self, Keeper};

use super::PipelineError;

/// Assumes the environment's role with the session name from the process
/// environment, and reports who ferry now is.
pub async fn assume_role(env: &Environment, reporter: &dyn Reporter) -> Result<(SdkConfig, Session), PipelineError> {
    let opts = assume_options(env, reporter);
    let dog = crate::deadline::Watchdog::new("STS", "assuming the role", reporter);
    let (sdk, session) = dog.run(assume::assume(env, &opts)).await??;
    reporter.report(&Event::Assumed {
        role_arn: session.role_arn.clone(),
        session_name: session.session_name.clone(),
        assumed_arn: session.assumed_arn.clone(),
    });
    Ok((sdk, session))
}

/// The session name ferry will ask STS for, known before it asks: the
/// receipt carries it even when the role cannot be assumed.
pub fn planned_session_name(env: &Environment) -> String {
    assume::session_name_for(BuildEnv::current(), env.session_name.as_deref())
}

/// The session ferry asks STS for, from the environment's settings and the
/// build's variables; reports the plan and anything ferry had to adjust.
pub fn assume_options(env: &Environment, reporter: &dyn Reporter) -> AssumeOptions {
    let build = BuildEnv::current();
    let opts = AssumeOptions {
        session_name: assume::session_name_for(build, env.session_name.as_deref()),
        duration: None,
        tags: if env.session_tags { provenance::session_tags(build) } else { Vec::new() },
        source_identity: provenance::source_identity(env.source_identity.as_deref(), build),
        policy: env.session_policy.then(|| crate::policy::session(env)),
    };
    let (hops, notes) = assume::plan(env, &opts);
    for message in notes {
        reporter.report(&Event::Warning { message });
    }
    reporter.report(&Event::SessionPlanned {
        hops: hops.iter().map(|h| h.role.arn.clone()).collect(),
        duration_seconds: hops.last().map_or(0, |h| h.duration.as_secs()),
        tags: opts.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        source_identity: opts.source_identity.clone(),
        session_policy: opts.policy.is_some(),
    });
    opts
}

/// Records the target in the receipt, then assumes its role unless a
/// signal comes first: the clients' configuration and session (recorded
/// too), or the exit code of the interruption (recorded, see
/// [`abort::interrupted`]).
pub async fn assume_recorded(
    env: &Environment,
    guard: &mut Guard,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> Result<Result<(SdkConfig, Session), ExitCode>, PipelineError> {
    receipt::set_target(&mut keeper.receipt, env);
    keeper.receipt.session_name = planned_session_name(env);
    match guard.run(assume_role(env, reporter)).await {
        Ok(assumed) => {
            let (sdk, session) = assumed?;
            receipt::set_session(&mut keeper.receipt, &session);
            Ok(Ok((sdk, session)))
        }
        Err(sig) => Ok(Err(abort::interrupted(keeper, sig, Phase::Assume, reporter))),
    }
}
