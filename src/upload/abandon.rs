//! Abandoning an interrupted upload: when a signal stops a release in the
//! middle of a multipart upload, the upload future is dropped (its parts in
//! flight are cancelled) and what S3 still holds for the key is aborted here,
//! then listed again to confirm that nothing is left open to pay for.

use std::time::Duration;

use super::{Dest, Failure, UploadError};
use crate::config::Environment;

/// How often the open uploads are listed and aborted before giving up: a
/// CreateMultipartUpload or UploadPart cancelled mid-flight may still land
/// on the server just after the first listing.
const ROUNDS: u32 = 4;

/// What [`abandon`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Abandoned {
    /// The upload ids aborted.
    pub aborted: Vec<String>,
    /// Uploads of the key S3 still lists as open at the end (0: confirmed none).
    pub open: u32,
}

/// Aborts every open multipart upload of exactly `key` in the environment's
/// bucket and confirms with ListMultipartUploads that none is left. (The key
/// is the bundle's content address: an open upload of it can only be this
/// bundle's, from this run or an interrupted earlier one.)
pub async fn abandon(s3: &aws_sdk_s3::Client, env: &Environment, key: &str) -> Result<Abandoned, UploadError> {
    let owner = env.role.account.as_str();
    let dest = Dest {
        bucket: env.bucket.clone(),
        key: key.to_string(),
        owner: owner.to_string(),
        kms: env.kms_key_id.is_some(),
        tags: !env.tags.is_empty(),
    };
    let fail = |action: &'static str, f: Failure| f.into_error(action, &dest);
    let mut done = Abandoned::default();
    for round in 0..ROUNDS {
        let listed = s3
            .list_multipart_uploads()
            .bucket(&env.bucket)
            .prefix(key)
            .expected_bucket_owner(owner)
            .send()
            .await
            .map_err(|e| fail("to list unfinished uploads to", Failure::from_sdk(&e)))?;
        let open: Vec<String> =
            listed.uploads().iter().filter(|u| u.key() == Some(key)).filter_map(|u| u.upload_id().map(String::from)).collect();
        done.open = open.len() as u32;
        if open.is_empty() {
            // Listed empty once after the aborts: confirmed. A first empty
            // listing is looked at once more, for a creation still in flight.
            if round > 0 || !done.aborted.is_empty() {
                return Ok(done);
            }
        }
        for id in open {
            s3.abort_multipart_upload()
                .bucket(&env.bucket)
                .key(key)
                .upload_id(&id)
                .expected_bucket_owner(owner)
                .send()
                .await
                .map_err(|e| fail("to abort the upload to", Failure::from_sdk(&e)))?;
            if !done.aborted.contains(&id) {
                done.aborted.push(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(done)
}
