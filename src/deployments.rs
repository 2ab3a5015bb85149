//! deployments: a deployment group's recent deployments, read from CodeDeploy
//! itself (ListDeployments + BatchGetDeployments) so it survives a Jenkins
//! restart, and the build numbers ferry writes into deployment descriptions.
//!
//! `rollback`, `queue` and `ferry history` all read the group's past through
//! here.

use std::collections::HashMap;

use aws_sdk_codedeploy::types::{DeploymentInfo, DeploymentStatus, S3Location, TimeRange};
use aws_smithy_types::DateTime;

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::config::{BUILD_MARKER, Environment};
use crate::event::HistoryEntry;
use crate::jenkins::BuildEnv;

/// BatchGetDeployments accepts at most this many ids.
const BATCH: usize = 25;

/// A deployment id as CodeDeploy makes them, `d-` and nine upper-case
/// letters or digits; anything else is refused before it is sent anywhere
/// (a clap value parser for every command that takes one).
pub fn parse_id(s: &str) -> Result<String, String> {
    let ok = s
        .strip_prefix("d-")
        .is_some_and(|rest| rest.len() == 9 && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{}` is not a CodeDeploy deployment id; they look like d-A1B2C3D4E (d- and nine upper-case letters or \
             digits). `ferry history` lists the group's recent ones.",
            crate::report::one_line(s)
        ))
    }
}

/// `ferry rollback --to`: a deployment id is checked like [`parse_id`]
/// (`d-NOPE` is refused here, not blamed on CodeDeploy later); a sha256 or
/// an S3 key (which holds a `/` or a `.`) passes as given.
pub fn parse_revision(s: &str) -> Result<String, String> {
    if s.starts_with("d-") && !s.contains(['/', '.']) {
        return parse_id(s);
    }
    Ok(s.to_string())
}

/// `ferry history --status`: one of CodeDeploy's deployment states, in
/// any case (`failed`, `InProgress`).
pub fn parse_status(s: &str) -> Result<DeploymentStatus, String> {
    let t = s.trim();
    DeploymentStatus::values().iter().find(|v| v.eq_ignore_ascii_case(t)).map(|v| DeploymentStatus::from(*v)).ok_or_else(|| {
        format!(
            "`{}` is not a CodeDeploy deployment state; give one of {}",
            crate::report::one_line(t),
            DeploymentStatus::values().join(", ")
        )
    })
}

/// `ferry history --since`: a duration back from now (`24h`, `7d`; a bare
/// number has no unit and is refused) or a UTC date or time (`2026-12-01`,
/// `2026-12-01T09:00:00Z`).
pub fn parse_since(s: &str) -> Result<DateTime, String> {
    let t = s.trim();
    let at = if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') {
        humantime::parse_rfc3339_weak(&format!("{t} 00:00:00")).map_err(|e| e.to_string())
    } else if t.contains('-') {
        humantime::parse_rfc3339_weak(t).map_err(|e| e.to_string())
    } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Err("a bare number has no unit".into())
    } else {
        crate::duration::parse(t)
            .and_then(|d| std::time::SystemTime::now().checked_sub(d).ok_or_else(|| "it reaches before 1970".to_string()))
    };
    at.map(DateTime::from).map_err(|why| {
        format!(
            "`{}` is neither a duration back from now (24h, 7d) nor a UTC date or time (2026-12-01, \
             2026-12-01T09:00:00Z): {why}",
            crate::report::one_line(t)
        )
    })
}

/// What started a deployment, for `ferry history`: ferry's rollback or
/// CodeDeploy's automatic one, a wave's release, a release, or CodeDeploy's
/// creator word for anything else (`autoscaling`, `CloudFormation`).
pub fn kind(info: &DeploymentInfo) -> String {
    use aws_sdk_codedeploy::types::DeploymentCreator;
    let description = info.description().unwrap_or_default();
    match info.creator() {
        Some(DeploymentCreator::CodeDeployRollback | DeploymentCreator::CloudFormationRollback) => "rollback".into(),
        _ if description.contains("ferry rollback ") => "rollback".into(),
        _ if description.contains(", wave ") && description.contains("(sha256 ") => "wave".into(),
        Some(DeploymentCreator::User) | None => "release".into(),
        Some(other) => other.as_str().to_string(),
    }
}

/// A CodeDeploy read that failed, reduced to what error messages need.
#[derive(Debug, Clone)]
pub struct ReadFailure {
    /// The endpoint could not be reached (or timed out).
    pub unreachable: bool,
    /// What CodeDeploy (or the connection) said.
    pub detail: String,
}

impl<E> From<aws_sdk_codedeploy::error::SdkError<E>> for ReadFailure
where
    E: aws_sdk_codedeploy::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(e: aws_sdk_codedeploy::error::SdkError<E>) -> Self {
        ReadFailure { unreachable: is_unreachable(&e), detail: describe_sdk_error(&e) }
    }
}

/// Which deployments of the group to list.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<DeploymentStatus>,
    /// Only those created at or after this time.
    pub created_after: Option<DateTime>,
    /// At most this many (newest first).
    pub limit: usize,
}

/// Statuses of a deployment that has not ended yet.
pub fn active_statuses() -> Vec<DeploymentStatus> {
    vec![
        DeploymentStatus::Created,
        DeploymentStatus::Queued,
        DeploymentStatus::InProgress,
        DeploymentStatus::Baking,
        DeploymentStatus::Ready,
    ]
}

/// The group's deployments matching `filter`, newest first, fully described.
pub async fn list(
    cd: &aws_sdk_codedeploy::Client,
    env: &Environment,
    filter: &Filter,
) -> Result<Vec<DeploymentInfo>, ReadFailure> {
    let mut req = cd.list_deployments().application_name(&env.application).deployment_group_name(&env.deployment_group);
    if !filter.statuses.is_empty() {
        req = req.set_include_only_statuses(Some(filter.statuses.clone()));
    }
    if let Some(after) = filter.created_after {
        req = req.create_time_range(TimeRange::builder().start(after).build());
    }
    // The SDK's paginator follows nextToken; stopping at the limit leaves
    // later pages unrequested.
    let mut items = req.into_paginator().items().send();
    let mut ids = Vec::new();
    while ids.len() < filter.limit {
        match items.next().await {
            Some(id) => ids.push(id?),
            None => break,
        }
    }
    describe(cd, &ids).await
}

/// Describes `ids`, in the order given (BatchGetDeployments answers in any order).
pub async fn describe(cd: &aws_sdk_codedeploy::Client, ids: &[String]) -> Result<Vec<DeploymentInfo>, ReadFailure> {
    let mut by_id: HashMap<String, DeploymentInfo> = HashMap::new();
    for chunk in ids.chunks(BATCH) {
        let out = cd.batch_get_deployments().set_deployment_ids(Some(chunk.to_vec())).send().await?;
        for info in out.deployments_info() {
            by_id.insert(info.deployment_id().unwrap_or_default().to_string(), info.clone());
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// A deployment's S3 revision, if it has one.
pub fn s3_location(info: &DeploymentInfo) -> Option<&S3Location> {
    info.revision().and_then(|r| r.s3_location())
}

/// `s3://bucket/key` of a revision.
pub fn s3_url(loc: &S3Location) -> String {
    format!("s3://{}/{}", loc.bucket().unwrap_or_default(), loc.key().unwrap_or_default())
}

/// Whether two revisions are the same object: bucket, key, and eTag / version
/// when both sides pin one.
pub fn same_object(a: &S3Location, b: &S3Location) -> bool {
    let pinned_equal = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (Some(x), Some(y)) => x.trim_matches('"') == y.trim_matches('"'),
        _ => true,
    };
    a.bucket() == b.bucket() && a.key() == b.key() && pinned_equal(a.e_tag(), b.e_tag()) && pinned_equal(a.version(), b.version())
}

/// The SHA-256 in a key ferry wrote (`…/<64 hex>.zip`), if it is one.
pub fn sha256_of_key(key: &str) -> Option<String> {
    let file = key.rsplit('/').next()?;
    let stem = file.split('.').next()?;
    (stem.len() == 64 && stem.chars().all(|c| c.is_ascii_hexdigit())).then(|| stem.to_ascii_lowercase())
}

/// A Jenkins build as ferry records it in a deployment description:
/// `ferry build 42 of web-deploy by …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Build {
    /// BUILD_NUMBER.
    pub number: u64,
    /// JOB_NAME (`-` when unknown). Numbers are only comparable within a job.
    pub job: String,
}

impl Build {
    /// The build of this process, from Jenkins' BUILD_NUMBER and JOB_NAME.
    pub fn of(env: &BuildEnv) -> Option<Build> {
        let number = env.build_number.as_deref()?.trim().parse().ok()?;
        let job = env.job_name.clone().unwrap_or_else(|| "-".into());
        Some(Build { number, job })
    }

    /// The description prefix that [`Build::parse`] reads back.
    pub fn marker(&self) -> String {
        format!("{BUILD_MARKER}{} of {}", self.number, self.job)
    }

    /// Reads the build back out of a deployment description (after the
    /// user's `description` prefix, when there is one).
    pub fn parse(description: &str) -> Option<Build> {
        let at = description.find(BUILD_MARKER)?;
        let rest = &description[at + BUILD_MARKER.len()..];
        let (number, rest) = rest.split_once(" of ")?;
        let number = number.parse().ok()?;
        let job = rest.split(" by ").next().unwrap_or(rest).trim();
        (!job.is_empty()).then(|| Build { number, job: job.to_string() })
    }
}

/// `2026-11-27T21:40:01Z`.
pub fn utc(t: &DateTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.secs())
        .ok()
        .and_then(|t| t.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).ok())
        .unwrap_or_default()
}

/// One history row from a deployment, before any S3 metadata is added.
pub fn entry(info: &DeploymentInfo) -> HistoryEntry {
    let loc = s3_location(info);
    let description = info.description().map(String::from);
    HistoryEntry {
        deployment_id: info.deployment_id().unwrap_or_default().to_string(),
        created_at: info.create_time().map(utc),
        completed_at: info.complete_time().map(utc),
        status: info.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "Unknown".into()),
        kind: kind(info),
        creator: info.creator().map(|c| c.as_str().to_string()).unwrap_or_else(|| "unknown".into()),
        build: description.as_deref().and_then(Build::parse).map(|b| b.number.to_string()),
        sha256: loc.and_then(|l| l.key()).and_then(sha256_of_key),
        bucket: loc.and_then(|l| l.bucket()).map(String::from),
        key: loc.and_then(|l| l.key()).map(String::from),
        etag: loc.and_then(|l| l.e_tag()).map(String::from),
        description,
        rollback_deployment_id: info.rollback_info().and_then(|r| r.rollback_deployment_id()).map(String::from),
    }
}

/// Adds what the bundle's S3 metadata says (`ferry-build`, `ferry-sha256`)
/// where the deployment itself does not: one HeadObject per distinct object,
/// and a missing object or denied read just leaves the fields empty.
pub async fn add_object_metadata(s3: &aws_sdk_s3::Client, owner: &str, entries: &mut [HistoryEntry]) {
    let mut seen: HashMap<(String, String), Option<HashMap<String, String>>> = HashMap::new();
    for e in entries.iter_mut() {
        let (Some(bucket), Some(key)) = (e.bucket.clone(), e.key.clone()) else { continue };
        if e.build.is_some() && e.sha256.is_some() {
            continue;
        }
        let slot = (bucket.clone(), key.clone());
        if !seen.contains_key(&slot) {
            let head = s3.head_object().bucket(&bucket).key(&key).expected_bucket_owner(owner).send().await;
            seen.insert(slot.clone(), head.ok().and_then(|h| h.metadata().cloned()));
        }
        if let Some(Some(meta)) = seen.get(&slot) {
            if e.build.is_none() {
                e.build = meta.get("ferry-build").cloned();
            }
            if e.sha256.is_none() {
                e.sha256 = meta.get("ferry-sha256").cloned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_marker_reads_back_with_its_job() {
        let b = Build { number: 42, job: "web deploy".into() };
        let desc = format!("{} by jenkins-web-42 (sha256 abc)", b.marker());
        assert_eq!(Build::parse(&desc), Some(b));
        assert_eq!(Build::parse("ferry release manual by me"), None);
        assert_eq!(Build::parse("ferry build x of y"), None);
    }

    #[test]
    fn build_marker_reads_back_after_a_description_prefix() {
        let b = Build { number: 7, job: "web".into() };
        let desc = format!("JIRA-12 hotfix · {} by jenkins-web-7 (sha256 abc)", b.marker());
        assert_eq!(Build::parse(&desc), Some(b));
    }

    #[test]
    fn deployment_ids_are_checked_before_anything_is_sent() {
        assert_eq!(parse_id("d-A1B2C3D4E").as_deref(), Ok("d-A1B2C3D4E"));
        for bad in ["d-; rm -rf /", "d-a1b2c3d4e", "d-A1B2C3D4", "d-A1B2C3D4EF", "A1B2C3D4E", "", "d-A1B2C3D4\n"] {
            assert!(parse_id(bad).is_err(), "{bad:?}");
        }
        assert!(!parse_id("d-\nforged").unwrap_err().contains('\n'), "the value is echoed on one line");
    }

    #[test]
    fn history_filters_read_states_in_any_case_and_since_as_a_duration_or_a_date() {
        assert_eq!(parse_status("failed"), Ok(DeploymentStatus::Failed));
        assert_eq!(parse_status("InProgress"), Ok(DeploymentStatus::InProgress));
        assert!(parse_status("broken").unwrap_err().contains("Succeeded"));
        assert_eq!(parse_since("2026-12-01").unwrap().secs(), 1_796_083_200);
        assert_eq!(parse_since("2026-12-01T09:00:00Z").unwrap().secs(), 1_796_083_200 + 9 * 3600);
        let day_ago = parse_since("24h").unwrap().secs();
        let now = DateTime::from(std::time::SystemTime::now()).secs();
        assert!((now - 86_400 - day_ago).abs() <= 1, "{day_ago} vs {now}");
        assert!(parse_since("7").unwrap_err().contains("no unit"));
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn kind_tells_releases_rollbacks_and_waves_apart() {
        use aws_sdk_codedeploy::types::DeploymentCreator;
        let info = |creator: DeploymentCreator, description: &str| {
            DeploymentInfo::builder().creator(creator).description(description).build()
        };
        assert_eq!(kind(&info(DeploymentCreator::User, "ferry release manual by me (sha256 abc)")), "release");
        assert_eq!(kind(&info(DeploymentCreator::User, "ferry build 4 of web by s (sha256 abc, wave prod)")), "wave");
        assert_eq!(kind(&info(DeploymentCreator::User, "ferry rollback by s from d-1 to s3://b/k")), "rollback");
        assert_eq!(kind(&info(DeploymentCreator::CodeDeployRollback, "")), "rollback");
        assert_eq!(kind(&info(DeploymentCreator::Autoscaling, "")), "autoscaling");
    }

    #[test]
    fn sha256_is_read_only_from_content_addressed_keys() {
        let sha = "ab".repeat(32);
        assert_eq!(sha256_of_key(&format!("releases/web/{sha}.zip")), Some(sha.clone()));
        assert_eq!(sha256_of_key("manual/app.zip"), None);
        assert_eq!(sha256_of_key(&format!("{}.tar.gz", &sha[..63])), None);
    }

    #[test]
    fn same_object_compares_pins_only_when_both_have_them() {
        let loc = |etag: Option<&str>| S3Location::builder().bucket("b").key("k").set_e_tag(etag.map(String::from)).build();
        assert!(same_object(&loc(Some("e1")), &loc(Some("\"e1\""))));
        assert!(!same_object(&loc(Some("e1")), &loc(Some("e2"))));
        assert!(same_object(&loc(None), &loc(Some("e2"))));
    }
}
