//! promote: `ferry release s3://BUCKET/KEY` deploys a bundle that is already
//! in S3 (staged by `ferry upload`, or released to staging) without
//! rebuilding it: the same bytes, proven by their checksum.
//!
//! The object must carry the `ferry-sha256` metadata ferry writes, and that
//! metadata is only a claim (anyone who may write the bucket can set it,
//! and a CRC-64/NVME beside it can be forged with 8 bytes): the object is
//! downloaded once, its SHA-256 computed from the bytes, and it gets the
//! same archive checks (entries, links, appspec) as a local archive before
//! anything else happens. From another bucket it is then copied (only if
//! it is still the object that was checked) into the environment's bucket
//! under its content address (the same key a release would use), and the
//! copy's SHA-256, computed by S3, must be the one ferry computed, else the
//! copy is removed; from the environment's own bucket it is deployed where
//! it is, pinned to the ETag of the bytes checked.

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
    /// The object fails the checks a local archive gets.
    #[error("{uri} cannot be promoted: {detail} Nothing was copied or deployed.")]
    Archive {
        /// The object.
        uri: String,
        /// The check's message, naming the object.
        detail: String,
    },
    /// The source bucket's name is not one S3 allows.
    #[error("{uri} cannot be promoted: {why}. Check the bucket name in the s3:// URI.")]
    BadBucket {
        /// The object.
        uri: String,
        /// What is wrong with the name.
        why: String,
    },
    /// The downloaded object could not be kept in a temporary file.
    #[error("cannot download {uri} to check it: {detail}. Check that $TMPDIR is writable and has space.")]
    Local {
        /// The object.
        uri: String,
        /// The I/O error.
        detail: String,
    },
}

impl PromoteError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            PromoteError::NotABundle { .. }
            | PromoteError::Unverified { .. }
            | PromoteError::Archive { .. }
            | PromoteError::BadBucket { .. }
            | PromoteError::Local { .. } => ExitCode::Usage,
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

/// The SHA-256 (hex) the object's `ferry-sha256` metadata claims: what it
/// was uploaded as, to be proven by its bytes.
fn recorded_sha256(uri: &S3Uri, head: &HeadObjectOutput) -> Result<String, PromoteError> {
    head.metadata()
        .and_then(|m| m.get("ferry-sha256"))
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|s| s.to_ascii_lowercase())
        .ok_or_else(|| PromoteError::Unverified {
            uri: uri.to_string(),
            why: "it has no ferry-sha256 metadata, so it was not uploaded by ferry".into(),
        })
}

/// Whether S3's own full-object SHA-256 of the object (which S3 computed
/// from the bytes it stored, for a single PUT or a copy) is `sha256` (hex).
fn s3_computed(head: &HeadObjectOutput, sha256: &str) -> bool {
    let full = head.checksum_type().is_none_or(|t| *t == ChecksumType::FullObject);
    full && head.checksum_sha256().is_some_and(|s| !s.contains('-') && s == crate::upload::b64_of_hex(sha256))
}

/// The object, downloaded and checked: its bytes, their sums, and the ETag
/// and version of the object they were read from.
struct Fetched {
    file: tempfile::NamedTempFile,
    sums: crate::bundle::sums::Sums,
    etag: String,
    version_id: Option<String>,
}

/// Downloads `uri` into a temporary file, computing its sums on the way.
async fn fetch(s3: &aws_sdk_s3::Client, uri: &S3Uri, owner: Option<&str>, kind: BundleType) -> Result<Fetched, PromoteError> {
    use std::io::Write;
    let fix = format!("The role needs s3:GetObject on {uri} (see `ferry policy deploy`)");
    let local = |e: std::io::Error| PromoteError::Local { uri: uri.to_string(), detail: e.to_string() };
    let mut out = s3
        .get_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .set_expected_bucket_owner(owner.map(String::from))
        .send()
        .await
        .map_err(|e| failed("to read", uri, &e, &fix))?;
    let mut file =
        tempfile::Builder::new().prefix("ferry-promote-").suffix(&format!(".{}", kind.extension())).tempfile().map_err(local)?;
    let mut summer = crate::bundle::sums::Summer::default();
    while let Some(chunk) = out
        .body
        .try_next()
        .await
        .map_err(|e| PromoteError::Unreachable { uri: uri.to_string(), detail: format!("the download broke off: {e}") })?
    {
        summer.update(&chunk);
        file.write_all(&chunk).map_err(local)?;
    }
    file.flush().map_err(local)?;
    Ok(Fetched {
        file,
        sums: summer.finish(),
        etag: out.e_tag().unwrap_or_default().to_string(),
        version_id: out.version_id().map(String::from),
    })
}

/// The checks a local archive gets, on the downloaded bytes; messages name
/// the object, not the temporary file.
async fn check_fetched(uri: &S3Uri, fetched: &Fetched, kind: BundleType) -> Result<(), PromoteError> {
    let path = fetched.file.path().to_path_buf();
    let checked = tokio::task::spawn_blocking(move || crate::bundle::check_archive(&path, kind).map_err(|e| e.to_string()))
        .await
        .map_err(|e| PromoteError::Local { uri: uri.to_string(), detail: e.to_string() })?;
    checked.map_err(|detail| PromoteError::Archive {
        uri: uri.to_string(),
        detail: detail.replace(&fetched.file.path().display().to_string(), &uri.to_string()),
    })
}

/// What can be told of `source` without AWS: its bundle type, from the
/// key's extension, and a bucket name S3 could hold. The release command
/// asks this before it assumes any role, so a typo costs no STS call.
pub fn check_local(source: &S3Uri) -> Result<BundleType, PromoteError> {
    let kind = BundleType::from_path(std::path::Path::new(&source.key))
        .ok_or_else(|| PromoteError::NotABundle { uri: source.to_string() })?;
    crate::config::check_bucket_name(&source.bucket).map_err(|why| PromoteError::BadBucket { uri: source.to_string(), why })?;
    Ok(kind)
}

/// Makes `source` deployable in `env`: downloaded, hashed and checked,
/// then deployed where it is or copied into the environment's bucket.
pub async fn promote(s3: &aws_sdk_s3::Client, env: &Environment, source: &S3Uri) -> Result<Promoted, PromoteError> {
    let kind = check_local(source)?;
    let own_bucket = source.bucket == env.bucket;
    let owner = own_bucket.then_some(env.role.account.as_str());
    let fix = format!("The role needs s3:GetObject on {source} (see `ferry policy deploy`)");
    let src = head(s3, source, owner).await.map_err(|e| failed("to read", source, &e, &fix))?;
    let recorded = recorded_sha256(source, &src)?;
    let fetched = fetch(s3, source, owner, kind).await?;
    let sha256 = fetched.sums.sha256.clone();
    if sha256 != recorded {
        return Err(PromoteError::Unverified {
            uri: source.to_string(),
            why: format!(
                "its bytes hash to SHA-256 {sha256}, not the {recorded} its ferry-sha256 metadata claims: it was replaced or \
                 altered after ferry uploaded it"
            ),
        });
    }
    check_fetched(source, &fetched, kind).await?;
    let size = fetched.sums.size;

    if own_bucket {
        let uploaded = Uploaded {
            bucket: source.bucket.clone(),
            key: source.key.clone(),
            // CodeDeploy fetches the revision only if it still has this ETag:
            // the bytes checked here.
            etag: fetched.etag.trim_matches('"').to_string(),
            version_id: fetched.version_id.clone(),
            reused: true,
        };
        return Ok(Promoted { uploaded, sha256, kind, size });
    }

    let target = S3Uri { bucket: env.bucket.clone(), key: crate::upload::content_key(env, &sha256, kind) };
    let present = head(s3, &target, Some(&env.role.account)).await.ok();
    // Already there when S3's own SHA-256 of it is the one computed here.
    let copied = if present.as_ref().is_some_and(|h| s3_computed(h, &sha256)) {
        None
    } else {
        // CopyObject copies at most 5 GiB in one call; bundles are far smaller.
        let mut copy_source = format!("{}/{}", source.bucket, urlencode_key(&source.key));
        if let Some(v) = &fetched.version_id {
            copy_source.push_str(&format!("?versionId={}", urlencode_key(v)));
        }
        let out = s3
            .copy_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .copy_source(copy_source)
            // Only the object whose bytes were checked.
            .copy_source_if_match(&fetched.etag)
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
                    &format!(
                        "The role needs s3:GetObject on {source} and s3:PutObject on {target}; a 412 means {source} was \
                         replaced while ferry checked it: re-run"
                    ),
                )
            })?;
        Some(out.version_id().map(String::from))
    };
    let stored = head(s3, &target, Some(&env.role.account)).await.map_err(|e| {
        failed("to read back", &target, &e, "The role needs s3:GetObject on its bucket (see `ferry policy deploy`)")
    })?;
    if !s3_computed(&stored, &sha256) {
        let mut why = format!(
            "S3's SHA-256 of the copy ({}) is not the {sha256} ferry computed from the source's bytes",
            stored.checksum_sha256().unwrap_or("none")
        );
        if let Some(version) = copied {
            why.push_str(&remove_copy(s3, env, &target, version).await);
        }
        return Err(PromoteError::Unverified { uri: target.to_string(), why });
    }
    let uploaded = Uploaded {
        bucket: target.bucket.clone(),
        key: target.key.clone(),
        etag: stored.e_tag().unwrap_or_default().trim_matches('"').to_string(),
        version_id: stored.version_id().map(String::from),
        reused: false,
    };
    Ok(Promoted { uploaded, sha256, kind, size })
}

/// Deletes a copy that was refused, so no unverified object is left in the
/// production bucket; what became of it, for the error message.
async fn remove_copy(s3: &aws_sdk_s3::Client, env: &Environment, target: &S3Uri, version: Option<String>) -> String {
    let deleted = s3
        .delete_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .set_version_id(version)
        .expected_bucket_owner(&env.role.account)
        .send()
        .await;
    match deleted {
        Ok(_) => "; the copy was removed".into(),
        Err(e) => {
            format!("; the copy could not be removed ({}): delete it by hand (`aws s3 rm {target}`)", describe_sdk_error(&e))
        }
    }
}

/// `CopySource` wants the key URL-encoded, slashes kept (RFC 3986's
/// unreserved characters and `/` pass as they are).
fn urlencode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &crate::upload::NOT_UNRESERVED.remove(b'/');
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
