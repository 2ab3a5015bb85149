//! SDK clients pinned to a loopback endpoint with fixed credentials.
//!
//! Nothing here reads the environment or `~/.aws`: the stack must behave the
//! same on a developer's laptop full of real profiles as on CI.

use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::Result;

/// One set of AWS credentials handed out by moto.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Access key id (`AKIA…` for users, `ASIA…` for role sessions).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token; only role sessions have one.
    pub session_token: Option<String>,
}

impl Keys {
    /// Keys moto has never seen; it files their requests under 123456789012.
    pub fn unknown() -> Keys {
        Keys {
            access_key_id: "AKIAFERRYTESTSTACK00".into(),
            secret_access_key: "ferry-test-stack-bootstrap".into(),
            session_token: None,
        }
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(&self.access_key_id, &self.secret_access_key, self.session_token.clone(), None, "ferry-test-stack")
    }
}

/// Where and as whom a client talks.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: &'a str,
    /// Signing region.
    pub region: &'a str,
    /// Credentials to sign with.
    pub keys: &'a Keys,
}

macro_rules! client_fn {
    ($(#[$doc:meta])* $name:ident, $krate:ident $(, $extra:ident($arg:expr))*) => {
        $(#[$doc])*
        pub fn $name(t: &Target<'_>) -> $krate::Client {
            let conf = $krate::config::Builder::new()
                .behavior_version($krate::config::BehaviorVersion::latest())
                .region($krate::config::Region::new(t.region.to_owned()))
                .endpoint_url(t.endpoint)
                .credentials_provider(t.keys.credentials())
                $(.$extra($arg))*
                .build();
            $krate::Client::from_conf(conf)
        }
    };
}

client_fn!(
    /// STS client.
    sts, aws_sdk_sts
);
client_fn!(
    /// IAM client.
    iam, aws_sdk_iam
);
client_fn!(
    /// S3 client; path-style because `bucket.127.0.0.1` does not resolve.
    s3, aws_sdk_s3, force_path_style(true)
);
client_fn!(
    /// CodeDeploy client (for the emulator).
    codedeploy, aws_sdk_codedeploy
);
client_fn!(
    /// Lambda client (moto's).
    lambda, aws_sdk_lambda
);
client_fn!(
    /// ECS client (moto's).
    ecs, aws_sdk_ecs
);
client_fn!(
    /// ECR client (moto's).
    ecr, aws_sdk_ecr
);

/// `sts:AssumeRole`, returning the session's keys.
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
    external_id: Option<&str>,
) -> Result<Keys> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await
        .map_err(err(format!("sts:AssumeRole {role_arn}")))?;
    let c = out.credentials.ok_or_else(|| format!("sts:AssumeRole {role_arn}: no credentials in the answer"))?;
    Ok(Keys { access_key_id: c.access_key_id, secret_access_key: c.secret_access_key, session_token: Some(c.session_token) })
}

/// Formats an SDK error with its whole cause chain, prefixed with what failed.
pub fn err<E: std::error::Error>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {}", DisplayErrorContext(e))
}
