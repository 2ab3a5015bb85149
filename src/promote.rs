//! promote: `ferry release s3://BUCKET/KEY` deploys a bundle that is already
//! in S3 (staged by `ferry upload`, or released to staging) without
//! rebuilding it: the same bytes, proven by their checksum.
//!
//! The object must carry the `ferry-sha256` metadata ferry writes, and S3's
//! own full-object checksum must agree: its SHA-256 (a single PUT, or a
//! copy), or, for a bundle uploaded in parts, its CRC-64/NVME with the
//! `ferry-crc64nvme` metadata ferry computed in the same pass as the SHA-256. From another bucket it is copied into the
//! environment's bucket under its content address (the same key a release
//! would use) and the copy is read back the same way; from the
//! environment's own bucket it is deployed where it is.

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, MetadataDirective};

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::config::{BundleType, Environment};
use crate::exit::ExitCode;
use crate::upload::Uploaded;

/// `s3://BUCKET/KEY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Uri {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
}

impl S3Uri {
    /// Parses `s3://BUCKET/KEY`; `None` for anything else (a local path).
    pub fn parse(s: &str) -> Option<S3Uri> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| S3Uri { bucket: bucket.into(), key: key.into() })
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an object cannot be promoted. Nothing was deployed.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// The key does not name a bundle type.
    #[error("{uri} is not a .zip, .tar or .tgz bundle; promote the object `ferry upload` printed.")]
    NotABundle {
        /// The source.
        uri: String,
    },
    /// The object is not there, or S3 refused to show it.
    #[error("S3 refused {action} {uri}: {detail}. {fix}")]
    Refused {
        /// read / copy / read back.
        action: &'static str,
        /// The object.
        uri: String,
        /// S3's answer.
        detail: String,
        /// What to do.
        fix: String,
    },
    /// S3 could not be reached.
    #[error("could not reach S3 for {uri}: {detail}. Check the network or proxy, and AWS_ENDPOINT_URL_S3 if you set it.")]
    Unreachable {
        /// The object.
        uri: String,
        /// The connection error.
        detail: String,
    },
    /// ferry cannot prove the object's bytes.
    #[error("{uri} cannot be promoted: {why}. Release the directory or archive itself, or stage it with `ferry upload`.")]
    Unverified {
        /// The object.
        uri: String,
        /// What is missing or disagrees.
        why: String,
    },
}

impl PromoteError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            PromoteError::NotABundle { .. } | PromoteError::Unverified { .. } => ExitCode::Usage,
            _ => ExitCode::Aws,
        }
    }
}

/// What was promoted.
#[derive(Debug)]
pub struct Promoted {
    /// The object the deployment is pinned to.
    pub uploaded: Uploaded,
    /// Its SHA-256 (hex), as recorded and verified.
    pub sha256: String,
    /// Its bundle type.
    pub kind: BundleType,
    /// Bytes.
    pub size: u64,
}

type HeadFailure =
    aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::head_object::HeadObjectError, aws_smithy_runtime_api::http::Response>;

async fn head(s3: &aws_sdk_s3::Client, uri: &S3Uri, owner: Option<&str>) -> Result<HeadObjectOutput, HeadFailure> {
    s3.head_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .checksum_mode(ChecksumMode::Enabled)
        .set_expected_bucket_owner(owner.map(String::from))
        .send()
        .await
}

fn failed<E, R>(action: &'static str, uri: &S3Uri, e: &aws_sdk_s3::error::SdkError<E, R>, fix: &str) -> PromoteError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if is_unreachable(e) {
        return PromoteError::Unreachable { uri: uri.to_string(), detail: describe_sdk_error(e) };
    }
    PromoteError::Refused { action, uri: uri.to_string(), detail: describe_sdk_error(e), fix: fix.to_string() }
}

/// The SHA-256 (hex) the object proves it holds: its `ferry-sha256`
/// metadata, confirmed by S3's full-object SHA-256 checksum, or by S3's
/// full-object CRC-64/NVME agreeing with the `ferry-crc64nvme` that ferry
/// computed in the same pass over the same bytes as that SHA-256.
fn proven_sha256(uri: &S3Uri, head: &HeadObjectOutput) -> Result<String, PromoteError> {
    let unverified = |why: String| PromoteError::Unverified { uri: uri.to_string(), why };
    let meta = |k: &str| head.metadata().and_then(|m| m.get(k));
    let recorded = meta("ferry-sha256")
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| unverified("it has no ferry-sha256 metadata, so it was not uploaded by ferry".into()))?
        .to_ascii_lowercase();
    let full = head.checksum_type().is_none_or(|t| *t == ChecksumType::FullObject);
    let stored = head.checksum_sha256().filter(|s| !s.contains('-') && full);
    let expected = crate::upload::b64_of_hex(&recorded);
    match stored {
        Some(stored) if stored == expected => return Ok(recorded),
        Some(stored) => return Err(unverified(format!("S3's SHA-256 ({stored}) is not the recorded {recorded} ({expected})"))),
        None => {}
    }
    let crc = head.checksum_crc64_nvme().filter(|_| full);
    let recorded_crc = meta("ferry-crc64nvme").and_then(|h| u64::from_str_radix(h, 16).ok());
    match (crc, recorded_crc) {
        (Some(crc), Some(rc)) if crc == crate::upload::plan::b64(&rc.to_be_bytes()) => Ok(recorded),
        (Some(crc), Some(rc)) => Err(unverified(format!("S3's CRC-64/NVME ({crc}) is not the recorded {rc:016x}"))),
        (crc, _) => Err(unverified(format!(
            "S3 keeps neither a full-object SHA-256 nor a CRC-64/NVME ferry recorded for it ({}), so its bytes cannot be \
             checked without downloading it",
            match (head.checksum_sha256(), crc) {
                (Some(c), _) => format!("a multipart checksum {c}"),
                (None, Some(c)) => format!("a CRC-64/NVME {c} but no ferry-crc64nvme metadata"),
                (None, None) => "none".into(),
            }
        ))),
    }
}

/// Makes `source` deployable in `env`: verified where it is, or copied into
/// the environment's bucket and verified there.
pub async fn promote(s3: &aws_sdk_s3::Client, env: &Environment, source: &S3Uri) -> Result<Promoted, PromoteError> {
    let kind = BundleType::from_path(std::path::Path::new(&source.key))
        .ok_or_else(|| PromoteError::NotABundle { uri: source.to_string() })?;
    let own_bucket = source.bucket == env.bucket;
    let owner = own_bucket.then_some(env.role.account.as_str());
    let fix = format!("The role needs s3:GetObject on {source} (see `ferry policy deploy`)");
    let src = head(s3, source, owner).await.map_err(|e| failed("to read", source, &e, &fix))?;
    let sha256 = proven_sha256(source, &src)?;
    let size = src.content_length().unwrap_or_default().max(0) as u64;

    let target = if own_bucket {
        source.clone()
    } else {
        let target = S3Uri { bucket: env.bucket.clone(), key: crate::upload::content_key(env, &sha256, kind) };
        let present = head(s3, &target, Some(&env.role.account)).await.ok();
        // Already there when it proves the same SHA-256 (a copy of a
        // multipart bundle gets S3's full SHA-256 computed by the copy).
        if present.as_ref().and_then(|h| proven_sha256(&target, h).ok()).as_deref() != Some(sha256.as_str()) {
            // CopyObject copies at most 5 GiB in one call; bundles are far smaller.
            s3.copy_object()
                .bucket(&target.bucket)
                .key(&target.key)
                .copy_source(format!("{}/{}", source.bucket, urlencode_key(&source.key)))
                .metadata_directive(MetadataDirective::Copy)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .expected_bucket_owner(&env.role.account)
                .send()
                .await
                .map_err(|e| {
                    failed(
                        "to copy into",
                        &target,
                        &e,
                        &format!("The role needs s3:GetObject on {source} and s3:PutObject on {target}"),
                    )
                })?;
        }
        target
    };
    let stored = head(s3, &target, Some(&env.role.account)).await.map_err(|e| {
        failed("to read back", &target, &e, "The role needs s3:GetObject on its bucket (see `ferry policy deploy`)")
    })?;
    let stored_sha = proven_sha256(&target, &stored)?;
    if stored_sha != sha256 {
        return Err(PromoteError::Unverified {
            uri: target.to_string(),
            why: format!("the copy holds {stored_sha}, not {sha256}"),
        });
    }
    let uploaded = Uploaded {
        bucket: target.bucket.clone(),
        key: target.key.clone(),
        etag: stored.e_tag().unwrap_or_default().trim_matches('"').to_string(),
        version_id: stored.version_id().map(String::from),
        reused: own_bucket,
    };
    Ok(Promoted { uploaded, sha256, kind, size })
}

/// `CopySource` wants the key URL-encoded, slashes kept (RFC 3986's
/// unreserved characters and `/` pass as they are).
fn urlencode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(key, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_s3_uris_with_bucket_and_key_parse() {
        assert_eq!(
            S3Uri::parse("s3://b/releases/web/x.zip"),
            Some(S3Uri { bucket: "b".into(), key: "releases/web/x.zip".into() })
        );
        for not in ["build/app", "s3://bucket", "s3:///key", "s3://b/", "https://b/k"] {
            assert_eq!(S3Uri::parse(not), None, "{not}");
        }
    }

    #[test]
    fn copy_source_keys_keep_slashes_and_encode_the_rest() {
        assert_eq!(urlencode_key("releases/web app/ü.zip"), "releases/web%20app/%C3%BC.zip");
    }
}
