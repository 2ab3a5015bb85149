//! `ferry policy [trust|deploy|jenkins|instance]`: the IAM documents this environment
//! needs, as JSON that `aws iam create-role` / `put-role-policy` accept.

use std::path::PathBuf;

use crate::cli::PolicyArgs;
use crate::cmd::error::Error;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::policy::{self, Kind};
use crate::report::write_product;
use crate::{assume, config};

/// Prints the requested policy document on stdout.
pub async fn run(args: &PolicyArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let doc = match args.kind {
        Kind::Deploy => policy::deploy(&env),
        Kind::Jenkins => policy::jenkins(&env),
        Kind::Instance => policy::instance(&env),
        Kind::Trust if args.oidc_issuer.is_some() || env.web_identity.as_ref().is_some_and(|w| w.issuer.is_some()) => {
            let web = env.web_identity.as_ref();
            let issuer = args.oidc_issuer.clone().or_else(|| web.and_then(|w| w.issuer.clone())).unwrap_or_default();
            let audience = args
                .audience
                .clone()
                .or_else(|| web.and_then(|w| w.audience.clone()))
                .unwrap_or_else(|| "sts.amazonaws.com".into());
            if let Some(message) = policy::subject_warning(args.subject.as_deref()) {
                reporter.report(&Event::Warning { message });
            }
            policy::trust_oidc(&env, &issuer, &audience, args.subject.as_deref())
                .map_err(|reason| config::ConfigError::Invalid { key: "oidc_issuer", value: issuer.clone(), reason })?
        }
        Kind::Trust => {
            for principal in &args.principal {
                policy::check_principal(principal).map_err(|reason| config::ConfigError::Invalid {
                    key: "--principal",
                    value: principal.clone(),
                    reason,
                })?;
            }
            let principals = if !args.principal.is_empty() {
                args.principal.clone()
            } else if let Some(previous_hop) = policy::default_principals(&env) {
                previous_hop
            } else {
                // Only the identity ferry runs as is known; say so, since a
                // laptop's identity is rarely the one to trust.
                let caller = assume::caller_arn(&env).await?;
                let principal = policy::principal_for_caller(&caller);
                reporter.report(&Event::Warning {
                    message: format!(
                        "trusting {principal}, the identity this ferry runs as ({caller}); pass --principal <ARN> to trust \
                         another (e.g. the Jenkins agents' role), and add the role's path if it has one."
                    ),
                });
                vec![principal]
            };
            policy::trust(&env, &principals)
        }
    };
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    write_product(&format!("{text}\n")).map_err(|e| crate::handoff::HandoffError::Write { detail: e.to_string() })?;
    Ok(ExitCode::Success)
}
