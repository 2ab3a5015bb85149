//! Who and what is behind a session, from the Jenkins environment: session
//! tags and the source identity, as CloudTrail will show them.

use crate::jenkins::BuildEnv;

/// The `source_identity` value that stands for the build user.
pub const BUILD_USER: &str = "build-user";

/// Session tags for the build: job, build number, commit and user, each only
/// when known.
pub fn session_tags(build: &BuildEnv) -> Vec<(String, String)> {
    [
        ("ferry:job", &build.job_name),
        ("ferry:build", &build.build_number),
        ("ferry:commit", &build.git_commit),
        ("ferry:user", &build.user),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_string(), sanitize_tag_value(value.as_deref()?))))
    .collect()
}

/// The source identity to send: the configured value, with [`BUILD_USER`]
/// replaced by the build user, mapped onto STS's alphabet.
pub fn source_identity(configured: Option<&str>, build: &BuildEnv) -> Option<String> {
    let value = match configured? {
        BUILD_USER => format!("ferry-{}", build.user.as_deref().unwrap_or("unknown")),
        other => other.to_string(),
    };
    Some(super::sanitize_session_name(&value))
}

/// STS tag values: up to 256 characters of letters, digits, spaces and
/// `_.:/=+-@`. Anything else becomes `-` rather than failing the release.
fn sanitize_tag_value(raw: &str) -> String {
    raw.chars().map(|c| if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) { c } else { '-' }).take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> BuildEnv {
        BuildEnv::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn tags_name_job_build_commit_and_user() {
        let tags = session_tags(&env(&[
            ("JOB_NAME", "web/deploy"),
            ("BUILD_NUMBER", "42"),
            ("GIT_COMMIT", "0123abc"),
            ("BUILD_USER_ID", "alice"),
            ("USER", "jenkins"),
        ]));
        let want = [("ferry:job", "web/deploy"), ("ferry:build", "42"), ("ferry:commit", "0123abc"), ("ferry:user", "alice")];
        assert_eq!(tags, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn unknown_values_are_left_out_not_sent_empty() {
        let tags = session_tags(&env(&[("USER", "bob"), ("JOB_NAME", " ")]));
        assert_eq!(tags, [("ferry:user".to_string(), "bob".to_string())]);
    }

    #[test]
    fn tag_values_sts_would_refuse_are_mapped() {
        let tags = session_tags(&env(&[("JOB_NAME", "web » deploy#1")]));
        assert_eq!(tags[0].1, "web - deploy-1");
    }

    #[test]
    fn source_identity_is_off_unless_configured() {
        assert_eq!(source_identity(None, &env(&[("USER", "bob")])), None);
        assert_eq!(source_identity(Some("release-bot"), &env(&[])).as_deref(), Some("release-bot"));
    }

    #[test]
    fn build_user_source_identity_prefers_the_jenkins_user() {
        let id = source_identity(Some(BUILD_USER), &env(&[("BUILD_USER_ID", "alice smith"), ("USER", "jenkins")]));
        assert_eq!(id.as_deref(), Some("ferry-alice-smith"));
    }
}
