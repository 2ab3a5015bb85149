//! Parallel multipart upload: one pass over the file reads each part, hashes
//! it (part SHA-256 for S3, whole-file SHA-256 to prove the bundle did not
//! change) and hands it to one of `concurrency` uploads in flight, so memory
//! is bounded by `(concurrency + 1) × part size`, whatever the bundle's size.
//!
//! An upload left by an interrupted run for the same key (the key is the
//! content's hash) is continued: parts already in S3 whose size and checksum
//! (or MD5 ETag) match the local bytes are not sent again. Any failure aborts
//! the upload so no orphaned parts are left to pay for.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::plan::{self, Plan};
use super::{Failure, Target, UploadError, content_type, unquote};
use crate::aws_error::is_unreachable;
use crate::bundle::Bundle;
use crate::event::{Event, Reporter};

/// A part S3 already holds for an upload being resumed.
#[derive(Debug, Clone)]
struct RemotePart {
    size: u64,
    etag: String,
    checksum_sha256: Option<String>,
}

/// A part read from disk.
struct ReadPart {
    number: u32,
    data: Bytes,
    digest: [u8; 32],
    md5_hex: Option<String>,
}

/// Uploads `bundle` in `plan.parts` parts and returns the composite checksum
/// (without `-N`) S3 must report. Aborts the upload on any error.
pub(super) async fn upload(
    t: &Target<'_>,
    bundle: &Bundle,
    plan: &Plan,
    concurrency: usize,
    reporter: &dyn Reporter,
) -> Result<String, UploadError> {
    // Resuming saves bytes but is not needed to upload: a role allowed to
    // write but not to list unfinished uploads still gets a fresh upload.
    let found = match resumable(t).await {
        Err(UploadError::Refused { .. }) => None,
        other => other?,
    };
    let (upload_id, remote) = match found {
        Some((id, parts)) => {
            let (count, bytes) = (parts.len() as u32, parts.values().map(|p| p.size).sum());
            reporter.report(&Event::UploadResumed { upload_id: id.clone(), parts: count, bytes });
            (id, parts)
        }
        None => (create(t, bundle).await?, BTreeMap::new()),
    };
    match send_parts(t, bundle, plan, concurrency, &upload_id, &remote, reporter).await {
        Ok(composite) => Ok(composite),
        Err(e) => {
            abort(t, &upload_id).await;
            Err(e)
        }
    }
}

async fn send_parts(
    t: &Target<'_>,
    bundle: &Bundle,
    plan: &Plan,
    concurrency: usize,
    upload_id: &str,
    remote: &BTreeMap<i32, RemotePart>,
    reporter: &dyn Reporter,
) -> Result<String, UploadError> {
    let read_err = |e: std::io::Error| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() };
    let mut file = Some(File::open(&bundle.path).map_err(read_err)?);
    let mut whole = Some(Sha256::new());
    let mut digests = Vec::with_capacity(plan.parts as usize);
    let mut done: Vec<CompletedPart> = Vec::with_capacity(plan.parts as usize);
    let mut in_flight: JoinSet<PartResult> = JoinSet::new();
    let mut sent = 0u64;
    // Part buffers come back when their upload is done and are read into
    // again, so memory stays at (concurrency + 1) parts instead of drifting up
    // with allocator fragmentation.
    let mut pool: Vec<BytesMut> = Vec::with_capacity(concurrency + 1);

    for n in 1..=plan.parts {
        // Reading (and hashing) part n overlaps with the uploads in flight.
        let (_, len) = plan.range(n);
        let known = remote.get(&(n as i32)).filter(|r| r.size == len).cloned();
        let (f, h) = (file.take().expect("file is returned"), whole.take().expect("hasher is returned"));
        let with_md5 = known.as_ref().is_some_and(|r| r.checksum_sha256.is_none());
        let buf = pool.pop().unwrap_or_default();
        let (f, h, part) = tokio::task::spawn_blocking(move || read_part(f, h, buf, n, len, with_md5))
            .await
            .map_err(|e| read_err(std::io::Error::other(e)))?
            .map_err(read_err)?;
        file = Some(f);
        whole = Some(h);
        digests.push(part.digest);
        let checksum = plan::b64(&part.digest);

        if let Some(r) = known.filter(|r| same_bytes(r, &checksum, part.md5_hex.as_deref())) {
            done.push(completed(n, &r.etag, &checksum));
            sent += len;
            reporter.report(&Event::UploadProgress { sent, total: plan.size });
            pool.extend(part.data.try_into_mut().ok());
            continue;
        }
        while in_flight.len() >= concurrency {
            let (p, bytes, buf) = join_next(&mut in_flight).await?;
            done.push(p);
            pool.extend(buf);
            sent += bytes;
            reporter.report(&Event::UploadProgress { sent, total: plan.size });
        }
        in_flight.spawn(upload_part(t, upload_id, part, checksum));
    }
    while !in_flight.is_empty() {
        let (p, bytes, _) = join_next(&mut in_flight).await?;
        done.push(p);
        sent += bytes;
        reporter.report(&Event::UploadProgress { sent, total: plan.size });
    }

    let read_sha = hex::encode(whole.expect("hasher is returned").finalize());
    if read_sha != bundle.sha256 {
        return Err(t.changed(bundle, read_sha));
    }
    done.sort_by_key(|p| p.part_number());
    t.s3.complete_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(upload_id)
        .expected_bucket_owner(&t.owner)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .map_err(|e| t.fail("to complete the upload of", Failure::from_sdk(&e)))?;
    Ok(plan::composite(&digests))
}

/// Reads part `n` (`len` bytes at the file's position), hashing it and
/// feeding the whole-file hasher in the same pass.
fn read_part(
    mut f: File,
    mut whole: Sha256,
    mut data: BytesMut,
    n: u32,
    len: u64,
    with_md5: bool,
) -> std::io::Result<(File, Sha256, ReadPart)> {
    data.clear();
    data.resize(len as usize, 0);
    f.read_exact(&mut data)?;
    whole.update(&data);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    let md5_hex = with_md5.then(|| {
        use md5::Digest as _;
        hex::encode(md5::Md5::digest(&data))
    });
    Ok((f, whole, ReadPart { number: n, data: data.freeze(), digest, md5_hex }))
}

/// A remote part holds the local bytes if S3's SHA-256 for it matches, or,
/// when S3 kept no checksum, its ETag is the MD5 of the bytes.
fn same_bytes(r: &RemotePart, checksum: &str, md5_hex: Option<&str>) -> bool {
    match (&r.checksum_sha256, md5_hex) {
        (Some(c), _) => c == checksum,
        (None, Some(md5)) => r.etag.eq_ignore_ascii_case(md5),
        (None, None) => false,
    }
}

fn completed(n: u32, etag: &str, checksum: &str) -> CompletedPart {
    CompletedPart::builder().part_number(n as i32).e_tag(etag).checksum_sha256(checksum).build()
}

/// An uploaded part, its length, and its buffer when no one else holds it.
type PartResult = Result<(CompletedPart, u64, Option<BytesMut>), UploadError>;

async fn join_next(set: &mut JoinSet<PartResult>) -> PartResult {
    match set.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(UploadError::Read { path: "upload task".into(), detail: e.to_string() }),
        None => unreachable!("join_next is only awaited on a non-empty set"),
    }
}

fn upload_part(
    t: &Target<'_>,
    upload_id: &str,
    part: ReadPart,
    checksum: String,
) -> impl Future<Output = PartResult> + Send + 'static {
    let s3 = t.s3.clone();
    let (bucket, key, owner) = (t.bucket.clone(), t.key.clone(), t.owner.clone());
    let upload_id = upload_id.to_string();
    async move {
        let len = part.data.len() as u64;
        let out = s3
            .upload_part()
            .bucket(&bucket)
            .key(&key)
            .upload_id(upload_id)
            .part_number(part.number as i32)
            .expected_bucket_owner(&owner)
            // Set by ferry, so the SDK neither recomputes it nor switches to
            // aws-chunked encoding; S3 checks the part against it.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .content_length(len as i64)
            .body(ByteStream::from(part.data.clone()))
            // The x-amz-checksum-sha256 above already proves the body to S3;
            // signing the payload too would hash every part a second time.
            .customize()
            // Time to send the part before the answer is overdue.
            .config_override(aws_sdk_s3::config::Builder::default().timeout_config(crate::deadline::for_upload(len)))
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| Failure::from_sdk(&e).into_error("the upload of a part to", &bucket, &key, &owner))?;
        Ok((completed(part.number, &unquote(out.e_tag()), &checksum), len, part.data.try_into_mut().ok()))
    }
}

async fn create(t: &Target<'_>, bundle: &Bundle) -> Result<String, UploadError> {
    let mut req =
        t.s3.create_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .expected_bucket_owner(&t.owner)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_type(ChecksumType::Composite)
            .content_type(content_type(bundle));
    if let Some(kms) = &t.kms_key_id {
        req = req.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms);
    }
    for (k, v) in t.metadata {
        req = req.metadata(k, v);
    }
    if let Some(tags) = &t.tagging {
        req = req.tagging(tags);
    }
    let out = req.send().await.map_err(|e| t.fail("to start a multipart upload to", Failure::from_sdk(&e)))?;
    out.upload_id()
        .map(String::from)
        .ok_or_else(|| t.refused("to start a multipart upload to", "S3 returned no upload id".into()))
}

/// The newest unfinished SHA-256 upload of exactly this key, with its parts.
/// Older ones, or ones without SHA-256 (whose composite checksum could never
/// match), are aborted.
async fn resumable(t: &Target<'_>) -> Result<Option<(String, BTreeMap<i32, RemotePart>)>, UploadError> {
    let listed =
        t.s3.list_multipart_uploads()
            .bucket(&t.bucket)
            .prefix(&t.key)
            .expected_bucket_owner(&t.owner)
            .send()
            .await
            .map_err(|e| t.fail("to list unfinished uploads to", Failure::from_sdk(&e)))?;
    let mut uploads: Vec<_> = listed.uploads().iter().filter(|u| u.key() == Some(t.key.as_str())).collect();
    uploads.sort_by_key(|u| std::cmp::Reverse(u.initiated().map(|d| (d.secs(), d.subsec_nanos()))));
    let mut chosen = None;
    for u in uploads {
        let Some(id) = u.upload_id() else { continue };
        if chosen.is_none() && u.checksum_algorithm() == Some(&ChecksumAlgorithm::Sha256) {
            chosen = Some(id.to_string());
        } else {
            abort(t, id).await;
        }
    }
    let Some(id) = chosen else { return Ok(None) };
    let mut parts = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let listed =
            t.s3.list_parts()
                .bucket(&t.bucket)
                .key(&t.key)
                .upload_id(&id)
                .expected_bucket_owner(&t.owner)
                .set_part_number_marker(marker.clone())
                .send()
                .await;
        let page = match listed {
            Ok(page) => page,
            // Its parts cannot be read, so it cannot be resumed: abort it
            // rather than leave one more open upload behind every run.
            Err(e) if !is_unreachable(&e) => {
                abort(t, &id).await;
                return Ok(None);
            }
            Err(e) => return Err(t.fail("to list the uploaded parts of", Failure::from_sdk(&e))),
        };
        for p in page.parts() {
            if let (Some(n), Some(size)) = (p.part_number(), p.size()) {
                let remote = RemotePart {
                    size: size as u64,
                    etag: unquote(p.e_tag()),
                    checksum_sha256: p.checksum_sha256().map(String::from),
                };
                parts.insert(n, remote);
            }
        }
        marker = page.next_part_number_marker().map(String::from);
        if page.is_truncated() != Some(true) || marker.is_none() {
            break;
        }
    }
    Ok(Some((id, parts)))
}

/// Best effort: the upload's own error is what the user needs to see.
async fn abort(t: &Target<'_>, upload_id: &str) {
    let _ =
        t.s3.abort_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(upload_id)
            .expected_bucket_owner(&t.owner)
            .send()
            .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(checksum: Option<&str>) -> RemotePart {
        RemotePart { size: 1, etag: "0CC175B9C0F1B6A831C399E269772661".into(), checksum_sha256: checksum.map(String::from) }
    }

    #[test]
    fn remote_part_is_reused_only_when_its_checksum_or_md5_matches() {
        assert!(same_bytes(&part(Some("c")), "c", None));
        assert!(!same_bytes(&part(Some("c")), "d", Some("0cc175b9c0f1b6a831c399e269772661")));
        assert!(same_bytes(&part(None), "d", Some("0cc175b9c0f1b6a831c399e269772661")));
        assert!(!same_bytes(&part(None), "d", Some("92eb5ffee6ae2fec3ad71c777531578f")));
        assert!(!same_bytes(&part(None), "d", None));
    }
}
