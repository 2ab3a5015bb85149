//! upload: puts the bundle into the target account's bucket, refusing a
//! bucket that the expected account does not own, and reads the object back
//! to prove S3 holds exactly the bytes that were hashed.
//!
//! Small bundles are one PUT with a full-object SHA-256; large ones a
//! parallel multipart upload with per-part SHA-256 and S3's composite
//! checksum ([`plan`]), resumed from an earlier interrupted run and aborted
//! on failure ([`multipart`]). Retries are the SDK's.

mod abandon;
mod multipart;
pub mod plan;

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, ServerSideEncryption};
use sha2::{Digest, Sha256};

pub use abandon::abandon;
pub use plan::Plan;
use plan::matches_composite;

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::bundle::Bundle;
use crate::config::Environment;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;

/// Parts in flight by default for a multipart upload.
pub const DEFAULT_CONCURRENCY: u16 = 4;

/// Where the bundle ended up; what the deployment is pinned to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// ETag without quotes, as CodeDeploy's `eTag` wants it.
    pub etag: String,
    /// Object version, on versioned buckets.
    pub version_id: Option<String>,
    /// Whether an identical object was already there and nothing was sent.
    pub reused: bool,
}

/// Why the bundle is not (verifiably) in the bucket.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// S3 refused: usually the role's permissions or the bucket's owner.
    #[error(
        "S3 refused {action} s3://{bucket}/{key}: {detail}. The bucket must exist and be owned by account {owner} \
         (ferry sends ExpectedBucketOwner), and the role needs s3:PutObject and s3:GetObject on that prefix \
         (see `ferry policy deploy`)."
    )]
    Refused {
        /// put / read back.
        action: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The account expected to own the bucket.
        owner: String,
        /// S3's code and message.
        detail: String,
    },
    /// The endpoint could not be reached.
    #[error(
        "could not reach S3 to upload s3://{bucket}/{key}: {detail}. Check the network or proxy, and AWS_ENDPOINT_URL_S3 if you set it."
    )]
    Unreachable {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The connection error.
        detail: String,
    },
    /// S3 holds different bytes than ferry hashed.
    #[error(
        "s3://{bucket}/{key} does not hold the bundle ferry uploaded: its SHA-256 checksum is {found}, expected {expected}. \
         Nothing was deployed. Re-run the release; if it repeats, something between this agent and S3 alters uploads."
    )]
    ChecksumMismatch {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What S3 reports (base64), or "none".
        found: String,
        /// What ferry computed (base64).
        expected: String,
    },
    /// The bundle's bytes changed between hashing and uploading.
    #[error(
        "{path} changed while ferry was uploading it: it was hashed as {expected} but read as {found}. \
         Nothing was deployed and the incomplete upload was aborted. Do not modify the bundle during a release; re-run."
    )]
    Changed {
        /// The bundle file.
        path: String,
        /// SHA-256 when bundled.
        expected: String,
        /// SHA-256 of what was read for the upload.
        found: String,
    },
    /// `--timeout` ran out before the upload was done (S3 silent, or slow).
    #[error(transparent)]
    TimedOut(#[from] crate::deadline::Passed),
    /// The bundle file could not be opened.
    #[error("cannot read the bundle {path}: {detail}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        detail: String,
    },
}

impl UploadError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            UploadError::Read { .. } => ExitCode::Usage,
            UploadError::TimedOut(_) => ExitCode::TimedOut,
            _ => ExitCode::Aws,
        }
    }
}

/// The S3 key for a bundle: content-addressed, so the same bytes always land
/// on the same key and are never uploaded twice.
pub fn key_for(env: &Environment, bundle: &Bundle) -> String {
    content_key(env, &bundle.sha256, bundle.kind)
}

/// The content address of bytes with this SHA-256 (hex) and type.
pub fn content_key(env: &Environment, sha256: &str, kind: crate::config::BundleType) -> String {
    let name = format!("{sha256}.{}", kind.extension());
    if env.prefix.is_empty() {
        format!("{}/{name}", env.application)
    } else {
        format!("{}/{}/{name}", env.prefix, env.application)
    }
}

/// S3's spelling of a SHA-256 given in hex: base64 of the digest.
pub fn b64_of_hex(hex_digest: &str) -> String {
    hex::decode(hex_digest).map(|d| plan::b64(&d)).unwrap_or_default()
}

/// An S3 client for `config`. Path-style addressing when the endpoint is a
/// bare IP or localhost, where virtual-hosted bucket names cannot resolve.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    let path_style = endpoint.as_deref().is_some_and(needs_path_style);
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn needs_path_style(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    let host = if host.starts_with('[') { host } else { host.rsplit_once(':').map_or(host, |(h, _)| h) };
    host == "localhost" || host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The object metadata ferry records with a bundle: its SHA-256, the role
/// session, and the Jenkins build and commit when set (`BUILD_TAG`,
/// `BUILD_URL`, `GIT_COMMIT`).
pub fn metadata_from_env(env: &Environment, sha256: &str, session: Option<&str>) -> Vec<(String, String)> {
    let mut metadata: Vec<(String, String)> = env.metadata.iter().map(|(k, v)| (k.clone(), header_safe(v))).collect();
    metadata.push(("ferry-sha256".to_string(), sha256.to_string()));
    if let Some(s) = session {
        metadata.push(("ferry-session".to_string(), s.to_string()));
    }
    for (key, var) in [("ferry-build", "BUILD_TAG"), ("ferry-build-url", "BUILD_URL"), ("ferry-commit", "GIT_COMMIT")] {
        if let Ok(v) = std::env::var(var) {
            metadata.push((key.to_string(), header_safe(&v)));
        }
    }
    metadata
}

/// `k=v&…` with keys and values percent-encoded, as `x-amz-tagging` wants.
fn tagging(tags: &std::collections::BTreeMap<String, String>) -> Option<String> {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&"))
}

/// How to upload: the parts of the upload that are policy, not target.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Parts in flight at once (memory is about this times the part size).
    pub concurrency: usize,
    /// Bundles of at least this many bytes go multipart.
    pub multipart_threshold: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions { concurrency: DEFAULT_CONCURRENCY as usize, multipart_threshold: plan::MULTIPART_THRESHOLD }
    }
}

/// Everything one upload's S3 calls share.
pub(crate) struct Target<'a> {
    pub(crate) s3: &'a aws_sdk_s3::Client,
    pub(crate) bucket: String,
    pub(crate) key: String,
    /// The account that must own the bucket: sent as ExpectedBucketOwner on
    /// every call, so a look-alike bucket elsewhere is never written to.
    pub(crate) owner: String,
    pub(crate) kms_key_id: Option<String>,
    pub(crate) metadata: &'a [(String, String)],
    /// URL-encoded `k=v&…` for the `x-amz-tagging` header, if any tags.
    pub(crate) tagging: Option<String>,
}

impl Target<'_> {
    pub(crate) fn refused(&self, action: &'static str, detail: String) -> UploadError {
        UploadError::Refused { action, bucket: self.bucket.clone(), key: self.key.clone(), owner: self.owner.clone(), detail }
    }

    pub(crate) fn fail(&self, action: &'static str, e: Failure) -> UploadError {
        e.into_error(action, &self.bucket, &self.key, &self.owner)
    }

    pub(crate) fn changed(&self, bundle: &Bundle, found: String) -> UploadError {
        UploadError::Changed { path: bundle.path.display().to_string(), expected: bundle.sha256.clone(), found }
    }
}

/// Uploads `bundle` (unless an identical object is already there) and
/// verifies S3's stored SHA-256 checksum against the bytes ferry read.
/// Gives up when the command's `--timeout` passes, and says so while S3 is
/// silent (see [`crate::deadline`]).
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    bundle: &Bundle,
    metadata: &[(String, String)],
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<Uploaded, UploadError> {
    // Progress events pass through the watchdog, so a slow upload that
    // keeps moving is not reported as a stall.
    let dog = crate::deadline::Watchdog::new("S3", "uploading the bundle to S3", reporter);
    dog.run(upload_watched(s3, env, bundle, metadata, opts, &dog)).await?
}

async fn upload_watched(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    bundle: &Bundle,
    metadata: &[(String, String)],
    opts: &UploadOptions,
    reporter: &dyn Reporter,
) -> Result<Uploaded, UploadError> {
    let t = Target {
        s3,
        bucket: env.bucket.clone(),
        key: key_for(env, bundle),
        owner: env.role.account.clone(),
        kms_key_id: env.kms_key_id.clone(),
        metadata,
        tagging: tagging(&env.tags),
    };
    let sha_b64 = plan::b64(&hex::decode(&bundle.sha256).expect("bundle sha256 is hex"));
    let multipart = bundle.size >= opts.multipart_threshold;
    let plan = Plan::for_size(bundle.size);

    if let Some(existing) = head(&t).await.map_err(|e| t.fail("to read", e))? {
        let found = existing.checksum_sha256().unwrap_or_default();
        let same = existing.content_length() == Some(bundle.size as i64)
            && (found == sha_b64 || (found.len() > 1 && holds_composite_of(bundle, &plan, found).await?));
        if same {
            reporter.report(&Event::UploadSkipped { bucket: t.bucket.clone(), key: t.key.clone() });
            let up = uploaded(&t, &existing, true);
            reporter.report(&uploaded_event(&up, bundle.size));
            return Ok(up);
        }
    }

    reporter.report(&Event::UploadStarted { bucket: t.bucket.clone(), key: t.key.clone(), size: bundle.size });
    let expected = if multipart {
        let composite = multipart::upload(&t, bundle, &plan, opts.concurrency.max(1), reporter).await?;
        Expected::Composite { value: composite, parts: plan.parts }
    } else {
        single_put(&t, bundle, &sha_b64).await?;
        reporter.report(&Event::UploadProgress { sent: bundle.size, total: bundle.size });
        Expected::Full(sha_b64)
    };

    // Read back: local S3 servers (and proxies) do not always verify the
    // checksum headers, so ferry compares what S3 says it stored.
    let stored = head(&t)
        .await
        .map_err(|e| t.fail("to read back", e))?
        .ok_or_else(|| t.refused("to read back", "the object is not there after the upload".into()))?;
    let found = stored.checksum_sha256().unwrap_or("none");
    let ok = match &expected {
        Expected::Full(v) => found == v,
        Expected::Composite { value, parts } => {
            matches_composite(found, value, *parts) && stored.checksum_type().is_none_or(|ty| *ty == ChecksumType::Composite)
        }
    };
    if !ok {
        let expected = match expected {
            Expected::Full(v) => v,
            Expected::Composite { value, parts } => format!("{value}-{parts} (composite of {parts} parts)"),
        };
        return Err(UploadError::ChecksumMismatch { bucket: t.bucket, key: t.key, found: found.to_string(), expected });
    }
    let up = uploaded(&t, &stored, false);
    reporter.report(&uploaded_event(&up, bundle.size));
    Ok(up)
}

/// What S3 must report for the object ferry just wrote.
enum Expected {
    /// Full-object SHA-256 (single PUT).
    Full(String),
    /// Composite SHA-256 of the parts (multipart).
    Composite { value: String, parts: u32 },
}

fn uploaded(t: &Target<'_>, out: &HeadObjectOutput, reused: bool) -> Uploaded {
    Uploaded {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        etag: unquote(out.e_tag()),
        version_id: out.version_id().map(String::from),
        reused,
    }
}

/// Whether an existing multipart object's composite checksum is the one this
/// bundle has under ferry's part plan: costs a local read, no upload.
async fn holds_composite_of(bundle: &Bundle, plan: &Plan, found: &str) -> Result<bool, UploadError> {
    let (path, plan_c) = (bundle.path.clone(), *plan);
    let digests = tokio::task::spawn_blocking(move || plan::part_digests(&path, &plan_c))
        .await
        .map_err(|e| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() })?
        .map_err(|e| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() })?;
    Ok(matches_composite(found, &plan::composite(&digests), plan.parts))
}

/// One PUT of a small bundle, read into memory and hashed in the same pass;
/// S3 checks the body against the full-object SHA-256 header.
async fn single_put(t: &Target<'_>, bundle: &Bundle, sha_b64: &str) -> Result<(), UploadError> {
    let body = tokio::fs::read(&bundle.path)
        .await
        .map_err(|e| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() })?;
    let read_sha = hex::encode(Sha256::digest(&body));
    if read_sha != bundle.sha256 {
        return Err(t.changed(bundle, read_sha));
    }
    let mut put =
        t.s3.put_object()
            .bucket(&t.bucket)
            .key(&t.key)
            .expected_bucket_owner(&t.owner)
            // S3 verifies the body against this before storing it; the
            // algorithm header is what makes S3 keep it for the read-back.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha_b64)
            .content_type(content_type(bundle))
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
    if let Some(kms) = &t.kms_key_id {
        put = put.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms);
    }
    for (k, v) in t.metadata {
        put = put.metadata(k, v);
    }
    if let Some(tags) = &t.tagging {
        put = put.tagging(tags);
    }
    // The x-amz-checksum-sha256 header proves the body to S3; signing the
    // payload as well would hash it a second time.
    put.customize()
        // Time to send the body before the answer is overdue.
        .config_override(aws_sdk_s3::config::Builder::default().timeout_config(crate::deadline::for_upload(bundle.size)))
        .disable_payload_signing()
        .send()
        .await
        .map_err(|e| t.fail("the upload to", Failure::from_sdk(&e)))?;
    Ok(())
}

/// Makes a value safe for an `x-amz-meta-*` header: printable ASCII stays,
/// everything else (non-ASCII from a Jenkins folder name, control
/// characters) and `%` itself are percent-encoded as UTF-8 bytes. Raw
/// non-ASCII header bytes break the request signature (the server reads
/// them differently from how the SDK signed them).
pub fn header_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn uploaded_event(up: &Uploaded, size: u64) -> Event {
    Event::Uploaded {
        bucket: up.bucket.clone(),
        key: up.key.clone(),
        etag: up.etag.clone(),
        version_id: up.version_id.clone(),
        size,
    }
}

pub(crate) fn content_type(bundle: &Bundle) -> &'static str {
    match bundle.kind {
        crate::bundle::BundleType::Zip => "application/zip",
        crate::bundle::BundleType::Tar => "application/x-tar",
        crate::bundle::BundleType::Tgz => "application/gzip",
    }
}

async fn head(t: &Target<'_>) -> Result<Option<HeadObjectOutput>, Failure> {
    match t
        .s3
        .head_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .expected_bucket_owner(&t.owner)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(Failure::from_sdk(&e)),
    }
}

/// An S3 failure reduced to what the error message needs.
pub(crate) struct Failure {
    unreachable: bool,
    detail: String,
}

impl Failure {
    pub(crate) fn from_sdk<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        // HEAD answers carry no body, so a 403 there has no code or message.
        let detail = match (status, e.code()) {
            (Some(403), None) => "403 Forbidden (access denied, or the bucket belongs to another account)".to_string(),
            _ => describe_sdk_error(e),
        };
        Failure { unreachable: is_unreachable(e), detail }
    }

    fn into_error(self, action: &'static str, bucket: &str, key: &str, owner: &str) -> UploadError {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        if self.unreachable {
            UploadError::Unreachable { bucket, key, detail: self.detail }
        } else {
            UploadError::Refused { action, bucket, key, owner: owner.to_string(), detail: self.detail }
        }
    }
}

pub(crate) fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_only_for_ip_and_localhost_endpoints() {
        assert!(needs_path_style("http://127.0.0.1:5000"));
        assert!(needs_path_style("http://localhost:9000/"));
        assert!(needs_path_style("http://[::1]:9000"));
        assert!(!needs_path_style("https://s3.eu-west-1.amazonaws.com"));
        assert!(!needs_path_style("https://bucket.vpce-123.s3.eu-west-1.vpce.amazonaws.com"));
    }

    #[test]
    fn tags_are_percent_encoded_for_the_tagging_header() {
        let tags = std::collections::BTreeMap::from([
            ("team".to_string(), "web ops".to_string()),
            ("a&b".to_string(), "c=d".to_string()),
        ]);
        assert_eq!(tagging(&tags).as_deref(), Some("a%26b=c%3Dd&team=web%20ops"));
        assert_eq!(tagging(&Default::default()), None);
    }

    #[test]
    fn metadata_values_are_percent_encoded_outside_printable_ascii() {
        assert_eq!(header_safe("jenkins-web deploy-42"), "jenkins-web deploy-42");
        assert_eq!(header_safe("Bücher 100%\n"), "B%C3%BCcher 100%25%0A");
    }

    #[test]
    fn etag_quotes_are_removed() {
        assert_eq!(unquote(Some("\"abc-2\"")), "abc-2");
    }
}
