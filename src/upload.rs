//! upload: puts the bundle into the target account's bucket, refusing a
//! bucket that the expected account does not own, and reads the object back
//! to prove S3 holds exactly the bytes that were hashed.
//!
//! Small bundles are one PUT with a full-object SHA-256; large ones a
//! parallel multipart upload with per-part CRC-64/NVME completed with S3's
//! full-object CRC-64/NVME ([`plan`], [`multipart`]), resumed from an
//! earlier interrupted run and aborted on failure. SHA-256 names the object;
//! CRC-64/NVME carries a large one across at a fraction of the CPU (both
//! were computed in the one pass that wrote or first read the bundle).
//!
//! Retries are the SDK's, except for a body S3 received damaged
//! (`BadDigest`): the SDK does not retry that, so ferry re-reads it from the
//! file and sends it again, a bounded number of times.

mod abandon;
mod multipart;
pub mod plan;

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, ServerSideEncryption};

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
    /// S3 refused the request; `remedy` is chosen from S3's error code.
    #[error("S3 refused {action} s3://{bucket}/{key}: {detail}. {remedy}")]
    Refused {
        /// put / read back.
        action: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// S3's code and message.
        detail: String,
        /// What to do about it, for this code (see [`Failure::remedy`]).
        remedy: String,
    },
    /// S3 kept refusing the bytes of one body (`BadDigest`: they did not
    /// match the SHA-256 ferry computed), though the local file was re-read
    /// and re-hashed before each re-send: something on the way alters them.
    #[error(
        "S3 refused {what} for s3://{bucket}/{key} {attempts} times: the bytes it received did not match the SHA-256 \
         ferry computed ({detail}). The bundle on disk is intact (ferry re-read and re-hashed it before each re-send), \
         so the bytes are altered between this agent and S3: a proxy or TLS-inspecting middlebox that rewrites request \
         bodies, a faulty network card or its checksum offload, or bad memory on this agent. Nothing was stored and \
         nothing was deployed. Send S3 traffic around the proxy (NO_PROXY=.amazonaws.com, or an S3 VPC endpoint) or run \
         the release on another agent; the bundle itself needs no change."
    )]
    Corrupted {
        /// "the bundle" or "part N".
        what: String,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Sends of that body, all refused.
        attempts: u32,
        /// S3's last code and message.
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
        "s3://{bucket}/{key} does not hold the bundle ferry uploaded: S3 reports its checksum as {found}, expected {expected}. \
         Nothing was deployed. {}",
        mismatch_remedy(found)
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
         Nothing was deployed and any incomplete upload is aborted. Do not modify the bundle during a release; re-run."
    )]
    Changed {
        /// The bundle file.
        path: String,
        /// Its checksum when bundled.
        expected: String,
        /// The same checksum of what was read for the upload.
        found: String,
    },
    /// The SHA-256 remembered for a ready archive (a known-sums record, not
    /// computed by this run) is not the one its bytes have: the record was
    /// altered or damaged. Nothing was created under it.
    #[error(
        "{path} does not have the SHA-256 ferry's record of it names: the record {record} says {expected}, its bytes \
         hash to {found}. The record was altered (by someone who can write to ferry's cache directory) or damaged. \
         Nothing was deployed, any incomplete upload was aborted, and the record was removed, so a re-run hashes the file \
         afresh. If other users or jobs can write to that directory, make it private (`chmod 700`) or point \
         XDG_CACHE_HOME elsewhere (`FERRY_BUNDLE_CACHE_MIB=0` turns the cache off)."
    )]
    Unverified {
        /// The bundle file.
        path: String,
        /// The known-sums record that named the SHA-256.
        record: String,
        /// The record's SHA-256.
        expected: String,
        /// The SHA-256 of the bytes read for the upload.
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
            UploadError::Read { .. } | UploadError::Unverified { .. } => ExitCode::Usage,
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

/// Everything but RFC 3986's unreserved characters: what `x-amz-tagging`
/// and S3's `CopySource` want encoded.
pub(crate) const NOT_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `k=v&…` with keys and values percent-encoded, as `x-amz-tagging` wants.
fn tagging(tags: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string();
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
    /// What the error messages of this upload name.
    pub(crate) fn dest(&self) -> Dest {
        Dest {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            owner: self.owner.clone(),
            kms: self.kms_key_id.is_some(),
            tags: self.tagging.is_some(),
        }
    }

    /// A refusal with no S3 error behind it (an answer missing something).
    pub(crate) fn refused(&self, action: &'static str, detail: String) -> UploadError {
        UploadError::Refused {
            action,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            detail,
            remedy: "Re-run; if it repeats, the endpoint (AWS_ENDPOINT_URL_S3, a proxy) does not behave as S3 does.".into(),
        }
    }

    pub(crate) fn fail(&self, action: &'static str, e: Failure) -> UploadError {
        e.into_error(action, &self.dest())
    }

    /// The bundle read for the upload has SHA-256 `found` (hex), not the
    /// one its known-sums record names: the record goes, and nothing is
    /// created under its SHA-256. `None` when no record named it.
    pub(crate) fn unverified(bundle: &Bundle, found: &str) -> Option<UploadError> {
        let record = bundle.sha256_record.as_ref()?;
        if found == bundle.sha256 {
            return None;
        }
        crate::bundle::known::KnownSums::forget(record);
        Some(UploadError::Unverified {
            path: bundle.path.display().to_string(),
            record: record.display().to_string(),
            expected: bundle.sha256.clone(),
            found: found.to_string(),
        })
    }

    /// The bundle read for the upload has CRC-64/NVME `found`, not the
    /// one computed with its SHA-256.
    pub(crate) fn changed(&self, bundle: &Bundle, found: u64) -> UploadError {
        UploadError::Changed {
            path: bundle.path.display().to_string(),
            expected: format!("CRC-64/NVME {:016x}", bundle.crc64nvme),
            found: format!("CRC-64/NVME {found:016x}"),
        }
    }
}

/// Uploads `bundle` (unless an identical object is already there) and
/// verifies S3's stored full-object checksum (SHA-256 for one PUT,
/// CRC-64/NVME for parts) against the bytes ferry read.
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
    // With the SHA-256 that names it, the CRC-64/NVME of the same pass: S3
    // keeps only the latter for a multipart object, and `ferry release
    // s3://…` proves an object by it (src/promote.rs).
    let mut metadata = metadata.to_vec();
    metadata.push(("ferry-crc64nvme".to_string(), format!("{:016x}", bundle.crc64nvme)));
    let t = Target {
        s3,
        bucket: env.bucket.clone(),
        key: key_for(env, bundle),
        owner: env.role.account.clone(),
        kms_key_id: env.kms_key_id.clone(),
        metadata: &metadata,
        tagging: tagging(&env.tags),
    };
    let sha_b64 = plan::b64(&hex::decode(&bundle.sha256).expect("bundle sha256 is hex"));
    let crc_b64 = plan::b64(&bundle.crc64nvme.to_be_bytes());
    let multipart = bundle.size >= opts.multipart_threshold;
    let plan = Plan::for_size(bundle.size);

    if let Some(existing) = head(&t).await.map_err(|e| t.fail("to read", e))? {
        let found = existing.checksum_sha256().unwrap_or_default();
        let same = existing.content_length() == Some(bundle.size as i64)
            && (holds(&existing, &Expected::Sha256(sha_b64.clone()))
                || holds(&existing, &Expected::Crc64Nvme(crc_b64.clone()))
                // Uploaded by an earlier ferry in parts with a composite SHA-256.
                || (found.len() > 1 && holds_composite_of(bundle, &plan, found).await?));
        // The object holds what the SHA-256 names; whether the local bytes
        // are that, only a pass over them can say when a record named it.
        if same && bundle.sha256_record.is_some() {
            let path = bundle.path.clone();
            let read_err = |detail: String| UploadError::Read { path: bundle.path.display().to_string(), detail };
            let sums = tokio::task::spawn_blocking(move || crate::bundle::hash_file(&path))
                .await
                .map_err(|e| read_err(e.to_string()))?
                .map_err(|e| read_err(e.to_string()))?;
            if let Some(e) = Target::unverified(bundle, &sums.sha256) {
                return Err(e);
            }
        }
        if same {
            // Only this event: nothing was uploaded, so no `uploaded` either.
            reporter.report(&Event::UploadSkipped { bucket: t.bucket.clone(), key: t.key.clone() });
            return Ok(uploaded(&t, &existing, true));
        }
    }

    reporter.report(&Event::UploadStarted { bucket: t.bucket.clone(), key: t.key.clone(), size: bundle.size });
    let expected = if multipart {
        multipart::upload(&t, bundle, &plan, opts.concurrency.max(1), reporter).await?;
        Expected::Crc64Nvme(crc_b64)
    } else {
        single_put(&t, bundle, &sha_b64, reporter).await?;
        reporter.report(&Event::UploadProgress { sent: bundle.size, total: bundle.size });
        Expected::Sha256(sha_b64)
    };

    // Read back: local S3 servers (and proxies) do not always verify the
    // checksum headers, so ferry compares what S3 says it stored.
    let stored = head(&t)
        .await
        .map_err(|e| t.fail("to read back", e))?
        .ok_or_else(|| t.refused("to read back", "the object is not there after the upload".into()))?;
    if !holds(&stored, &expected) {
        let (found, expected) = match expected {
            Expected::Sha256(v) => (stored.checksum_sha256().unwrap_or("none").to_string(), format!("{v} (SHA-256)")),
            Expected::Crc64Nvme(v) => {
                let kind = stored.checksum_type().map(|t| format!(" ({})", t.as_str())).unwrap_or_default();
                (format!("{}{kind}", stored.checksum_crc64_nvme().unwrap_or("none")), format!("{v} (full-object CRC-64/NVME)"))
            }
        };
        return Err(UploadError::ChecksumMismatch { bucket: t.bucket, key: t.key, found, expected });
    }
    let up = uploaded(&t, &stored, false);
    reporter.report(&uploaded_event(&up, bundle.size));
    Ok(up)
}

/// The content address of an appspec ferry wrote (an ECS release's): the
/// bundle's, with `.yaml`.
pub fn appspec_key(env: &Environment, sha256: &str) -> String {
    let name = format!("{sha256}.yaml");
    if env.prefix.is_empty() {
        format!("{}/{name}", env.application)
    } else {
        format!("{}/{}/{name}", env.prefix, env.application)
    }
}

/// Puts an appspec ferry wrote into the environment's bucket at its
/// content address ([`appspec_key`]) the way a small bundle goes: the
/// bucket's owner checked, one PUT with its SHA-256, S3's stored checksum
/// read back; an identical object already there is reused.
pub async fn upload_appspec(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    text: &str,
    metadata: &[(String, String)],
    reporter: &dyn Reporter,
) -> Result<Uploaded, UploadError> {
    let dog = crate::deadline::Watchdog::new("S3", "uploading the appspec to S3", reporter);
    dog.run(upload_appspec_watched(s3, env, text, metadata, &dog)).await?
}

async fn upload_appspec_watched(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    text: &str,
    metadata: &[(String, String)],
    reporter: &dyn Reporter,
) -> Result<Uploaded, UploadError> {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    let t = Target {
        s3,
        bucket: env.bucket.clone(),
        key: appspec_key(env, &hex::encode(digest)),
        owner: env.role.account.clone(),
        kms_key_id: env.kms_key_id.clone(),
        metadata,
        tagging: tagging(&env.tags),
    };
    let sha_b64 = plan::b64(&digest);
    let expected = Expected::Sha256(sha_b64.clone());
    let size = text.len() as u64;
    if let Some(existing) = head(&t).await.map_err(|e| t.fail("to read", e))?
        && existing.content_length() == Some(size as i64)
        && holds(&existing, &expected)
    {
        reporter.report(&Event::UploadSkipped { bucket: t.bucket.clone(), key: t.key.clone() });
        return Ok(uploaded(&t, &existing, true));
    }
    reporter.report(&Event::UploadStarted { bucket: t.bucket.clone(), key: t.key.clone(), size });
    put_once(&t, "application/x-yaml", &sha_b64, text.as_bytes().to_vec()).await.map_err(|f| t.fail("the upload to", f))?;
    let stored = head(&t)
        .await
        .map_err(|e| t.fail("to read back", e))?
        .ok_or_else(|| t.refused("to read back", "the object is not there after the upload".into()))?;
    if !holds(&stored, &expected) {
        let found = stored.checksum_sha256().unwrap_or("none").to_string();
        return Err(UploadError::ChecksumMismatch {
            bucket: t.bucket,
            key: t.key,
            found,
            expected: format!("{sha_b64} (SHA-256)"),
        });
    }
    let up = uploaded(&t, &stored, false);
    reporter.report(&uploaded_event(&up, size));
    Ok(up)
}

/// What to do about a read-back that does not match.
fn mismatch_remedy(found: &str) -> &'static str {
    if found.starts_with("none") {
        "The server kept no checksum for the object, so ferry cannot prove what it holds: AWS S3 always keeps one; \
         an S3-compatible server that does not (for multipart uploads, CRC-64/NVME full-object checksums) cannot be \
         released to."
    } else {
        "Re-run the release; if it repeats, something between this agent and S3 alters uploads."
    }
}

/// The full-object checksum S3 must report for the object ferry wrote
/// (base64): S3 computed it from the bytes it received and checked it
/// against the one ferry sent.
enum Expected {
    /// SHA-256 (single PUT): the content address itself.
    Sha256(String),
    /// CRC-64/NVME (multipart, `ChecksumType` FULL_OBJECT).
    Crc64Nvme(String),
}

/// Whether `out`, a HeadObject with checksum mode on, reports `expected`.
fn holds(out: &HeadObjectOutput, expected: &Expected) -> bool {
    let full = out.checksum_type().is_none_or(|t| *t == ChecksumType::FullObject);
    match expected {
        Expected::Sha256(v) => out.checksum_sha256() == Some(v.as_str()) && full,
        Expected::Crc64Nvme(v) => out.checksum_crc64_nvme() == Some(v.as_str()) && full,
    }
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

/// One PUT of a small bundle, read into memory and checked in the same pass;
/// S3 checks the body against the full-object SHA-256 header. When S3
/// answers that the body arrived damaged (`BadDigest`), the file is read and
/// hashed again and re-sent, up to [`CORRUPTION_ATTEMPTS`] sends in all.
async fn single_put(t: &Target<'_>, bundle: &Bundle, sha_b64: &str, reporter: &dyn Reporter) -> Result<(), UploadError> {
    let mut attempt = 1;
    loop {
        // What goes out is what is on disk now, proven by its hash.
        let body = tokio::fs::read(&bundle.path)
            .await
            .map_err(|e| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() })?;
        // The CRC-64/NVME computed with the SHA-256 proves it, at a
        // fraction of a second SHA-256 pass (S3 checks the SHA-256); a
        // SHA-256 a record named is proven by computing it.
        if bundle.sha256_record.is_some() {
            let body_sha = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&body));
            if let Some(e) = Target::unverified(bundle, &hex::encode(body_sha)) {
                return Err(e);
            }
        }
        let read_crc = crate::bundle::sums::crc64nvme(&body);
        if read_crc != bundle.crc64nvme {
            return Err(t.changed(bundle, read_crc));
        }
        let failure = match put_once(t, content_type(bundle), sha_b64, body).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        if !failure.is_corruption() {
            return Err(t.fail("the upload to", failure));
        }
        if attempt == CORRUPTION_ATTEMPTS {
            return Err(UploadError::Corrupted {
                what: "the bundle".into(),
                bucket: t.bucket.clone(),
                key: t.key.clone(),
                attempts: attempt,
                detail: failure.detail().to_string(),
            });
        }
        attempt += 1;
        reporter.report(&Event::UploadResent {
            part: None,
            attempt,
            attempts: CORRUPTION_ATTEMPTS,
            detail: failure.detail().to_string(),
        });
        tokio::time::sleep(corruption_backoff(attempt)).await;
    }
}

async fn put_once(t: &Target<'_>, content_type: &str, sha_b64: &str, body: Vec<u8>) -> Result<(), Failure> {
    let size = body.len() as u64;
    let mut put =
        t.s3.put_object()
            .bucket(&t.bucket)
            .key(&t.key)
            .expected_bucket_owner(&t.owner)
            // S3 verifies the body against this before storing it; the
            // algorithm header is what makes S3 keep it for the read-back.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha_b64)
            .content_type(content_type)
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
        .config_override(aws_sdk_s3::config::Builder::default().timeout_config(crate::deadline::for_upload(size)))
        .disable_payload_signing()
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Failure::from_sdk(&e))
}

/// Makes a value safe for an `x-amz-meta-*` header: printable ASCII stays,
/// everything else (non-ASCII from a Jenkins folder name, control
/// characters) and `%` itself are percent-encoded as UTF-8 bytes. Raw
/// non-ASCII header bytes break the request signature (the server reads
/// them differently from how the SDK signed them).
pub fn header_safe(value: &str) -> String {
    // CONTROLS is 0x00-0x1f, 0x7f and all non-ASCII bytes.
    const UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    percent_encoding::utf8_percent_encode(value, UNSAFE).to_string()
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

/// Where an upload goes, as its error messages name it; `Send + 'static`
/// for the part uploads in flight.
#[derive(Clone, Debug)]
pub(crate) struct Dest {
    pub(crate) bucket: String,
    pub(crate) key: String,
    /// The account that must own the bucket (ExpectedBucketOwner).
    pub(crate) owner: String,
    /// Uploads are encrypted with a configured KMS key.
    pub(crate) kms: bool,
    /// Uploads carry object tags.
    pub(crate) tags: bool,
}

/// An S3 failure reduced to what the error message needs.
#[derive(Debug)]
pub(crate) struct Failure {
    unreachable: bool,
    detail: String,
    code: Option<String>,
    message: Option<String>,
    status: Option<u16>,
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
            (Some(301), None) => "301 Moved Permanently (the bucket is in another region)".to_string(),
            // Messages quote it before a sentence of their own.
            _ => describe_sdk_error(e).trim_end_matches('.').to_string(),
        };
        Failure {
            unreachable: is_unreachable(e),
            detail,
            code: e.code().map(String::from),
            message: e.message().map(String::from),
            status,
        }
    }

    /// S3 says the body it received does not match the checksum sent with
    /// it: the bytes changed on the way. Re-sending them can succeed.
    pub(crate) fn is_corruption(&self) -> bool {
        let message = self.message.as_deref().unwrap_or_default().to_ascii_lowercase();
        match self.code.as_deref() {
            Some("BadDigest" | "XAmzContentSHA256Mismatch") => true,
            // Some S3-compatible servers say it this way.
            Some("InvalidRequest") => {
                message.contains("checksum") && (message.contains("did not match") || message.contains("does not match"))
            }
            _ => false,
        }
    }

    /// S3's code and message, for the messages that quote it.
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// What to do about this failure of `action` (the words of the
    /// message: "the upload to", "to read back", …), by S3's error code.
    /// Each remedy names the cause its code means, and only that one.
    pub(crate) fn remedy(&self, action: &str, d: &Dest) -> String {
        let code = self.code.as_deref().unwrap_or_default();
        let message = self.message.as_deref().unwrap_or_default().to_ascii_lowercase();
        let denied = matches!(code, "AccessDenied" | "AllAccessDisabled") || (code.is_empty() && self.status == Some(403));
        match code {
            _ if denied && d.kms && message.contains("kms") => "The role may not use the bucket's KMS key: it needs \
                kms:GenerateDataKey and kms:Decrypt on it (see `ferry policy deploy`), and the key policy must allow the \
                role; `ferry doctor` checks both."
                .into(),
            _ if denied => format!(
                "The bucket must exist and be owned by account {} (ferry sends ExpectedBucketOwner), and the role needs \
                 {} (see `ferry policy deploy`).",
                d.owner,
                needed_permission(action, d)
            ),
            "NoSuchBucket" => format!(
                "There is no bucket {} (as seen from this region): fix `bucket` or `region` in ferry.toml, or create the \
                 bucket in account {}.",
                d.bucket, d.owner
            ),
            "NoSuchUpload" => "The multipart upload was removed while ferry was using it: another run releasing the \
                same bundle aborted it, or a lifecycle rule aborts incomplete uploads too early. Re-run; a fresh upload \
                is started."
                .into(),
            "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
                "The bucket is in another region than ferry.toml's `region`: set `region` to the bucket's.".into()
            }
            _ if self.status == Some(301) => {
                "The bucket is in another region than ferry.toml's `region`: set `region` to the bucket's.".into()
            }
            "RequestTimeTooSkewed" => {
                "This agent's clock is more than 15 minutes off S3's: synchronise it (NTP), then re-run.".into()
            }
            "SignatureDoesNotMatch" => "S3 computed another request signature than ferry sent: a proxy between this \
                agent and S3 rewrote the request's headers or URL, or the session's secret key is not the one STS \
                issued. Send S3 traffic around the proxy (NO_PROXY) and re-run."
                .into(),
            "InvalidAccessKeyId" | "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => "S3 did not accept the \
                session's credentials (expired or revoked while ferry used them): re-run; if it repeats, check that the \
                role's maximum session duration covers `duration`."
                .into(),
            c if c.starts_with("KMS.") => "The KMS key in `kms_key_id` cannot be used: it must exist in this account \
                and region and be enabled, and its key policy must allow the role (`ferry doctor` checks it)."
                .into(),
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => "S3 kept answering this after the \
                SDK's retries: the trouble is on S3's side or the network's. Re-run later; for SlowDown, a lower \
                --upload-concurrency sends fewer requests at once."
                .into(),
            "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" => "S3 did not accept the list of parts: the upload \
                was changed by another writer while ferry completed it. Re-run; a fresh upload is started."
                .into(),
            "BadDigest" | "XAmzContentSHA256Mismatch" => "The bytes S3 received differ from the ones ferry sent: \
                something between this agent and S3 (a proxy, a middlebox, a faulty network card) alters them. The \
                bundle on disk is fine; send S3 traffic around the proxy or use another agent."
                .into(),
            _ if self.status.is_some_and(|s| s >= 500) => {
                "S3 kept failing after the SDK's retries: the trouble is on S3's side or the network's. Re-run later.".into()
            }
            _ => "S3 judged the request itself invalid. If AWS_ENDPOINT_URL_S3 points at something other than AWS S3, \
                it may lack what ferry relies on (SHA-256 checksums, ExpectedBucketOwner); otherwise report this message \
                as a ferry bug."
                .into(),
        }
    }

    pub(crate) fn into_error(self, action: &'static str, d: &Dest) -> UploadError {
        let (bucket, key) = (d.bucket.clone(), d.key.clone());
        if self.unreachable {
            UploadError::Unreachable { bucket, key, detail: self.detail }
        } else {
            let remedy = self.remedy(action, d);
            UploadError::Refused { action, bucket, key, detail: self.detail, remedy }
        }
    }
}

/// The permission an AccessDenied on `action` points at.
fn needed_permission(action: &str, d: &Dest) -> String {
    let base = match action {
        "to read" | "to read back" => "s3:GetObject",
        "to list unfinished uploads to" => "s3:ListBucketMultipartUploads on the bucket",
        "to list the uploaded parts of" => "s3:ListMultipartUploadParts",
        "to abort the upload to" => "s3:AbortMultipartUpload",
        _ => "s3:PutObject",
    };
    let mut needed = base.to_string();
    if base == "s3:PutObject" && d.tags {
        needed.push_str(" and s3:PutObjectTagging (the upload carries tags)");
    }
    if base == "s3:PutObject" && d.kms {
        needed.push_str(", with kms:GenerateDataKey on the KMS key");
    }
    if !base.contains("bucket") {
        needed.push_str(&format!(" on s3://{}/{}", d.bucket, d.key));
    }
    needed
}

/// How many times one body (the single PUT, or one part) is sent when S3
/// answers that its bytes arrived damaged: once, then re-sent three times.
pub(crate) const CORRUPTION_ATTEMPTS: u32 = 4;

/// The pause before re-send `attempt` (2, 3, …) of a damaged body: 200 ms,
/// 400 ms, 800 ms. Flipped bits in transit are rarely persistent; a pause
/// lets a flapping link or a restarting proxy settle.
pub(crate) fn corruption_backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(200 << attempt.saturating_sub(2).min(4))
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

    fn failure(code: &str, status: u16, message: &str) -> Failure {
        Failure {
            unreachable: false,
            detail: format!("{code}: {message}"),
            code: (!code.is_empty()).then(|| code.to_string()),
            message: (!message.is_empty()).then(|| message.to_string()),
            status: Some(status),
        }
    }

    fn dest() -> Dest {
        Dest { bucket: "b".into(), key: "releases/web/x.zip".into(), owner: "222222222222".into(), kms: false, tags: false }
    }

    #[test]
    fn only_a_body_that_arrived_damaged_counts_as_corruption() {
        assert!(failure("BadDigest", 400, "The SHA256 you specified did not match the calculated checksum.").is_corruption());
        assert!(failure("XAmzContentSHA256Mismatch", 400, "").is_corruption());
        assert!(failure("InvalidRequest", 400, "Value for x-amz-checksum-sha256 did not match the body").is_corruption());
        assert!(!failure("InvalidRequest", 400, "Checksum type mismatch occurred").is_corruption());
        assert!(!failure("InvalidDigest", 400, "The Content-MD5 you specified is not valid.").is_corruption());
        assert!(!failure("AccessDenied", 403, "Access Denied").is_corruption());
    }

    #[test]
    fn each_s3_error_gets_the_remedy_of_its_own_cause() {
        let d = dest();
        let remedy = |code: &str, status: u16, action: &str| failure(code, status, "m").remedy(action, &d);
        let denied = remedy("AccessDenied", 403, "the upload to");
        assert!(denied.contains("owned by account 222222222222") && denied.contains("s3:PutObject"), "{denied}");
        assert!(remedy("", 403, "to read").contains("s3:GetObject"), "a HEAD 403 has no code");
        assert!(remedy("AccessDenied", 403, "to list unfinished uploads to").contains("s3:ListBucketMultipartUploads"));
        assert!(remedy("AccessDenied", 403, "to abort the upload to").contains("s3:AbortMultipartUpload"));
        let kms = failure("AccessDenied", 403, "User is not authorized to perform kms:GenerateDataKey")
            .remedy("the upload to", &Dest { kms: true, ..dest() });
        assert!(kms.contains("kms:GenerateDataKey") && !kms.contains("owned by account"), "{kms}");
        for (code, status, cause) in [
            ("NoSuchBucket", 404, "There is no bucket b"),
            ("NoSuchUpload", 404, "removed while ferry was using it"),
            ("PermanentRedirect", 301, "another region"),
            ("", 301, "another region"),
            ("RequestTimeTooSkewed", 403, "clock"),
            ("SignatureDoesNotMatch", 403, "rewrote the request"),
            ("ExpiredToken", 400, "credentials"),
            ("KMS.DisabledException", 400, "be enabled"),
            ("SlowDown", 503, "--upload-concurrency"),
            ("InternalError", 500, "S3's side"),
            ("InvalidPart", 400, "list of parts"),
            ("BadDigest", 400, "between this agent and S3"),
            ("InvalidArgument", 400, "request itself invalid"),
        ] {
            let text = remedy(code, status, "the upload to");
            assert!(text.contains(cause), "{code}: {text}");
            if !matches!(code, "AccessDenied" | "") || status == 301 {
                assert!(!text.contains("owned by account"), "{code} is not about ownership: {text}");
            }
        }
    }

    #[test]
    fn damaged_bodies_are_re_sent_a_bounded_number_of_times_with_growing_pauses() {
        assert_eq!(CORRUPTION_ATTEMPTS, 4);
        let pauses: Vec<u128> = (2..=CORRUPTION_ATTEMPTS).map(|a| corruption_backoff(a).as_millis()).collect();
        assert_eq!(pauses, [200, 400, 800]);
    }

    #[test]
    fn a_read_back_with_no_checksum_is_named_as_a_server_that_keeps_none() {
        let mismatch = |found: &str| {
            UploadError::ChecksumMismatch {
                bucket: "b".into(),
                key: "k".into(),
                found: found.into(),
                expected: "FQ+MKkUU5WI= (full-object CRC-64/NVME)".into(),
            }
            .to_string()
        };
        let none = mismatch("none");
        assert!(none.contains("kept no checksum") && !none.contains("alters uploads"), "{none}");
        let other = mismatch("AAAAAAAAAAA= (FULL_OBJECT)");
        assert!(other.contains("alters uploads") && !other.contains("kept no checksum"), "{other}");
    }

    #[test]
    fn the_corruption_error_names_the_path_not_permissions() {
        let e = UploadError::Corrupted {
            what: "part 2".into(),
            bucket: "b".into(),
            key: "k".into(),
            attempts: 4,
            detail: "BadDigest: did not match".into(),
        };
        let text = e.to_string();
        assert!(text.starts_with("S3 refused part 2 for s3://b/k 4 times"), "{text}");
        for phrase in ["between this agent and S3", "proxy", "network card", "NO_PROXY", "intact"] {
            assert!(text.contains(phrase), "missing {phrase}: {text}");
        }
        assert!(!text.contains("owned") && !text.contains("s3:PutObject") && !text.contains("policy"), "{text}");
        assert_eq!(e.exit_code(), ExitCode::Aws);
    }

    #[test]
    fn etag_quotes_are_removed() {
        assert_eq!(unquote(Some("\"abc-2\"")), "abc-2");
    }
}
