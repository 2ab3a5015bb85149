//! upload: puts the bundle into the target account's bucket, refusing a
//! bucket that the expected account does not own, and reads the object back
//! to prove S3 holds exactly the bytes that were hashed.

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine;

use crate::bundle::Bundle;
use crate::config::Environment;
use crate::error::{ExitCode, describe_sdk_error, is_unreachable};
use crate::report::{Event, Reporter};

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
    #[error("could not reach S3 to upload s3://{bucket}/{key}: {detail}. Check the network or proxy, and AWS_ENDPOINT_URL_S3 if you set it.")]
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
            _ => ExitCode::Aws,
        }
    }
}

/// The S3 key for a bundle: content-addressed, so the same bytes always land
/// on the same key and are never uploaded twice.
pub fn key_for(env: &Environment, bundle: &Bundle) -> String {
    let name = format!("{}.{}", bundle.sha256, bundle.kind.extension());
    if env.prefix.is_empty() {
        format!("{}/{name}", env.application)
    } else {
        format!("{}/{}/{name}", env.prefix, env.application)
    }
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

/// Uploads `bundle` (unless an identical object is already there) and
/// verifies S3's stored SHA-256 against the bundle's.
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    bundle: &Bundle,
    metadata: &[(String, String)],
    reporter: &dyn Reporter,
) -> Result<Uploaded, UploadError> {
    let bucket = env.bucket.clone();
    let key = key_for(env, bundle);
    let owner = env.role.account.clone();
    let sha_b64 = base64::engine::general_purpose::STANDARD
        .encode(hex::decode(&bundle.sha256).expect("bundle sha256 is hex"));
    let refused = |action: &'static str, detail: String| UploadError::Refused {
        action,
        bucket: bucket.clone(),
        key: key.clone(),
        owner: owner.clone(),
        detail,
    };

    if let Some(existing) = head(s3, &bucket, &key, &owner).await.map_err(|e| sdk_err(e, &bucket, &key, &refused))? {
        if existing.checksum_sha256() == Some(sha_b64.as_str()) {
            let up = Uploaded {
                bucket: bucket.clone(),
                key: key.clone(),
                etag: unquote(existing.e_tag()),
                version_id: existing.version_id().map(String::from),
                reused: true,
            };
            reporter.report(&uploaded_event(&up, bundle.size));
            return Ok(up);
        }
    }

    reporter.report(&Event::UploadStarted { bucket: bucket.clone(), key: key.clone(), size: bundle.size });
    let body = ByteStream::from_path(&bundle.path)
        .await
        .map_err(|e| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() })?;
    let mut put = s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .expected_bucket_owner(&owner)
        // S3 verifies the body against this before storing it; the
        // algorithm header is what makes S3 keep it for the read-back.
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(&sha_b64)
        .content_type(content_type(bundle))
        .body(body);
    for (k, v) in metadata {
        put = put.metadata(k, v);
    }
    put.send().await.map_err(|e| sdk_err(Failure::from_sdk(&e), &bucket, &key, &refused))?;
    reporter.report(&Event::UploadProgress { sent: bundle.size, total: bundle.size });

    // Read back: local S3 servers (and proxies) do not always verify the
    // checksum header, so ferry compares what S3 says it stored.
    let stored = head(s3, &bucket, &key, &owner)
        .await
        .map_err(|e| sdk_err(e, &bucket, &key, &refused))?
        .ok_or_else(|| refused("to read back", "the object is not there after the upload".into()))?;
    let found = stored.checksum_sha256().unwrap_or("none");
    if found != sha_b64 {
        return Err(UploadError::ChecksumMismatch { bucket, key, found: found.to_string(), expected: sha_b64 });
    }
    let up = Uploaded {
        bucket,
        key,
        etag: unquote(stored.e_tag()),
        version_id: stored.version_id().map(String::from),
        reused: false,
    };
    reporter.report(&uploaded_event(&up, bundle.size));
    Ok(up)
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

fn content_type(bundle: &Bundle) -> &'static str {
    match bundle.kind {
        crate::bundle::BundleType::Zip => "application/zip",
        crate::bundle::BundleType::Tar => "application/x-tar",
        crate::bundle::BundleType::Tgz => "application/gzip",
    }
}

async fn head(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    owner: &str,
) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>, Failure> {
    match s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .expected_bucket_owner(owner)
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
struct Failure {
    unreachable: bool,
    detail: String,
}

impl Failure {
    fn from_sdk<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Failure
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
}

fn sdk_err(e: Failure, bucket: &str, key: &str, refused: &dyn Fn(&'static str, String) -> UploadError) -> UploadError {
    if e.unreachable {
        UploadError::Unreachable { bucket: bucket.to_string(), key: key.to_string(), detail: e.detail }
    } else {
        refused("the upload to", e.detail)
    }
}

fn unquote(etag: Option<&str>) -> String {
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
    fn etag_quotes_are_removed() {
        assert_eq!(unquote(Some("\"abc-2\"")), "abc-2");
    }
}
