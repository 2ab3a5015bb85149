//! Parallel multipart upload: one pass over the file reads each part,
//! checksums it with CRC-64/NVME (the part's for S3, and the whole file's,
//! which S3 checks the completed object against as its full-object checksum
//! and which proves the bundle did not change since its SHA-256 was taken)
//! and hands it to one of `concurrency` uploads in flight, so memory is
//! bounded by `(concurrency + 1) × part size`, whatever the bundle's size.
//! No SHA-256 is computed here when this run computed the bundle's as it
//! was written (or read it once, for a ready archive), with the same
//! CRC-64/NVME. When it came from a known-sums record instead, this pass
//! computes it too, and the upload is aborted, never completed, if the bytes
//! do not have it.
//!
//! An upload left by an interrupted run for the same key (the key is the
//! content's hash) is continued: parts already in S3 whose size and checksum
//! (or MD5 ETag) match the local bytes are not sent again.
//!
//! A part S3 received damaged (`BadDigest`) is read again from the file,
//! checked against the digest it was hashed with, and re-sent (bounded, with
//! backoff). Any failure aborts the upload so no orphaned parts are left to
//! pay for: the parts still in flight are cancelled and waited for first, so
//! none is sent after the abort, and the abort is then confirmed with
//! ListMultipartUploads / ListParts (a part S3 was still storing when the
//! abort arrived can land after it) and repeated if the upload is still
//! there. An abort that fails is reported, never dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use tokio::task::JoinSet;

use super::plan::{self, Plan};
use super::{CORRUPTION_ATTEMPTS, Dest, Failure, Target, UploadError, content_type, corruption_backoff, unquote};
use crate::aws_error::is_unreachable;
use crate::bundle::Bundle;
use crate::event::{Event, Reporter};

/// A part S3 already holds for an upload being resumed.
#[derive(Debug, Clone)]
struct RemotePart {
    size: u64,
    etag: String,
    checksum_crc64nvme: Option<String>,
}

/// A part read from disk.
struct ReadPart {
    number: u32,
    data: Bytes,
    crc: u64,
    md5_hex: Option<String>,
}

/// Uploads `bundle` in `plan.parts` parts, completed with its full-object
/// CRC-64/NVME, which S3 checks. Aborts the upload on any error.
pub(super) async fn upload(
    t: &Target<'_>,
    bundle: &Bundle,
    plan: &Plan,
    concurrency: usize,
    reporter: &dyn Reporter,
) -> Result<(), UploadError> {
    // Resuming saves bytes but is not needed to upload: a role allowed to
    // write but not to list unfinished uploads still gets a fresh upload.
    let found = match resumable(t, reporter).await {
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
    let mut in_flight = InFlight { tasks: JoinSet::new(), notes: tokio::sync::mpsc::unbounded_channel() };
    let open = Open { id: &upload_id, remote: &remote };
    match send_parts(t, bundle, plan, concurrency, open, &mut in_flight, reporter).await {
        Ok(()) => Ok(()),
        Err(e) => {
            // No part may reach S3 after the abort: cancel the ones in
            // flight and wait until each has ended.
            in_flight.tasks.shutdown().await;
            in_flight.report_notes(reporter);
            abort_reporting(t, &upload_id, reporter).await;
            Err(e)
        }
    }
}

/// The part uploads running, and what they have to say (re-sends), which
/// they cannot report themselves: the reporter is not theirs to hold.
struct InFlight {
    tasks: JoinSet<PartResult>,
    notes: (tokio::sync::mpsc::UnboundedSender<Event>, tokio::sync::mpsc::UnboundedReceiver<Event>),
}

impl InFlight {
    fn report_notes(&mut self, reporter: &dyn Reporter) {
        while let Ok(event) = self.notes.1.try_recv() {
            reporter.report(&event);
        }
    }

    /// The next finished part, after reporting what the parts said so far.
    async fn join_next(&mut self, reporter: &dyn Reporter) -> PartResult {
        let joined = self.tasks.join_next().await;
        self.report_notes(reporter);
        match joined {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(UploadError::Read { path: "upload task".into(), detail: e.to_string() }),
            None => unreachable!("join_next is only awaited on a non-empty set"),
        }
    }
}

/// The multipart upload being sent to, and the parts it already holds.
#[derive(Clone, Copy)]
struct Open<'a> {
    id: &'a str,
    remote: &'a BTreeMap<i32, RemotePart>,
}

async fn send_parts(
    t: &Target<'_>,
    bundle: &Bundle,
    plan: &Plan,
    concurrency: usize,
    open: Open<'_>,
    in_flight: &mut InFlight,
    reporter: &dyn Reporter,
) -> Result<(), UploadError> {
    let (upload_id, remote) = (open.id, open.remote);
    let read_err = |e: std::io::Error| UploadError::Read { path: bundle.path.display().to_string(), detail: e.to_string() };
    let mut file = Some(File::open(&bundle.path).map_err(read_err)?);
    let mut whole = Some(Whole::new(bundle.sha256_record.is_some()));
    let mut done: Vec<CompletedPart> = Vec::with_capacity(plan.parts as usize);
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
        let with_md5 = known.as_ref().is_some_and(|r| r.checksum_crc64nvme.is_none());
        let buf = pool.pop().unwrap_or_default();
        let (f, h, part) = tokio::task::spawn_blocking(move || read_part(f, h, buf, n, len, with_md5))
            .await
            .map_err(|e| read_err(std::io::Error::other(e)))?
            .map_err(read_err)?;
        file = Some(f);
        whole = Some(h);
        let checksum = plan::b64(&part.crc.to_be_bytes());

        if let Some(r) = known.filter(|r| same_bytes(r, &checksum, part.md5_hex.as_deref())) {
            done.push(completed(n, &r.etag, &checksum));
            sent += len;
            reporter.report(&Event::UploadProgress { sent, total: plan.size });
            pool.extend(part.data.try_into_mut().ok());
            continue;
        }
        while in_flight.tasks.len() >= concurrency {
            let p = in_flight.join_next(reporter).await?;
            done.push(p.completed);
            pool.extend(p.buf);
            sent += p.len;
            reporter.report(&Event::UploadProgress { sent, total: plan.size });
        }
        let source = PartSource { path: bundle.path.clone(), offset: plan.range(n).0, notes: in_flight.notes.0.clone() };
        in_flight.tasks.spawn(upload_part(t, upload_id, part, checksum, source));
    }
    while !in_flight.tasks.is_empty() {
        let p = in_flight.join_next(reporter).await?;
        done.push(p.completed);
        sent += p.len;
        reporter.report(&Event::UploadProgress { sent, total: plan.size });
    }

    let (read_crc, read_sha) = whole.expect("hasher is returned").finish();
    if let Some(e) = read_sha.and_then(|sha| Target::unverified(bundle, &sha)) {
        return Err(e);
    }
    if read_crc != bundle.crc64nvme {
        return Err(t.changed(bundle, read_crc));
    }
    done.sort_by_key(|p| p.part_number());
    t.s3.complete_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(upload_id)
        .expected_bucket_owner(&t.owner)
        // S3 combines the parts' CRCs and refuses the upload unless they
        // make this one: the object is the file, end to end.
        .checksum_crc64_nvme(plan::b64(&read_crc.to_be_bytes()))
        .checksum_type(ChecksumType::FullObject)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .map_err(|e| t.fail("to complete the upload of", Failure::from_sdk(&e)))?;
    Ok(())
}

/// The whole file's digests, fed part by part in the upload's one read:
/// its CRC-64/NVME (combined from the parts' own, so no byte is run through
/// a CRC twice), and its SHA-256 when a record, not this run, named it.
struct Whole {
    crc: Option<u64>,
    sha: Option<sha2::Sha256>,
}

impl Whole {
    fn new(with_sha256: bool) -> Whole {
        Whole { crc: None, sha: with_sha256.then(<sha2::Sha256 as sha2::Digest>::new) }
    }

    /// Feeds the next `len` bytes' CRC-64/NVME, `crc`.
    fn add_part(&mut self, crc: u64, len: u64) {
        self.crc = Some(match self.crc {
            None => crc,
            Some(before) => crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Nvme, before, crc, len),
        });
    }

    /// Feeds the next bytes to the SHA-256, if one is computed.
    fn hash(&mut self, piece: &[u8]) {
        if let Some(sha) = &mut self.sha {
            sha2::Digest::update(sha, piece);
        }
    }

    /// The CRC-64/NVME, and the SHA-256 in hex if it was computed.
    fn finish(self) -> (u64, Option<String>) {
        let empty = crate::bundle::sums::crc64nvme(&[]);
        (self.crc.unwrap_or(empty), self.sha.map(|s| hex::encode(sha2::Digest::finalize(s))))
    }
}

/// Reads part `n` (`len` bytes at the file's position), checksumming it and
/// feeding the whole-file checksum in the same pass.
fn read_part(
    mut f: File,
    mut whole: Whole,
    mut data: BytesMut,
    n: u32,
    len: u64,
    with_md5: bool,
) -> std::io::Result<(File, Whole, ReadPart)> {
    // A reused buffer keeps its length: only growth is zero-filled, so the
    // bytes about to be overwritten are not written twice (a memset of every
    // part was a tenth of the upload's CPU).
    if !crate::bundle::sums::is_aligned_for(&data, len as usize) {
        data = crate::bundle::sums::aligned(len as usize);
    }
    data.resize(len as usize, 0);
    // Read and digested a piece at a time, so the digests find each piece
    // still in cache after the kernel's copy.
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
    for piece in data.chunks_mut(crate::bundle::sums::PIECE) {
        f.read_exact(piece)?;
        crc.update(piece);
        whole.hash(piece);
    }
    let crc = crc.finalize();
    whole.add_part(crc, len);
    let md5_hex = with_md5.then(|| {
        use md5::Digest as _;
        hex::encode(md5::Md5::digest(&data))
    });
    Ok((f, whole, ReadPart { number: n, data: data.freeze(), crc, md5_hex }))
}

/// A remote part holds the local bytes if S3's CRC-64/NVME for it matches,
/// or, when S3 kept no checksum, its ETag is the MD5 of the bytes.
fn same_bytes(r: &RemotePart, checksum: &str, md5_hex: Option<&str>) -> bool {
    match (&r.checksum_crc64nvme, md5_hex) {
        (Some(c), _) => c == checksum,
        (None, Some(md5)) => r.etag.eq_ignore_ascii_case(md5),
        (None, None) => false,
    }
}

fn completed(n: u32, etag: &str, checksum: &str) -> CompletedPart {
    CompletedPart::builder().part_number(n as i32).e_tag(etag).checksum_crc64_nvme(checksum).build()
}

/// An uploaded part.
struct PartDone {
    completed: CompletedPart,
    /// Its length.
    len: u64,
    /// Its buffer, when no one else holds it.
    buf: Option<BytesMut>,
}

type PartResult = Result<PartDone, UploadError>;

/// Where a part's bytes are in the bundle, to read them again for a re-send,
/// and where to say that it was re-sent.
struct PartSource {
    path: PathBuf,
    offset: u64,
    notes: tokio::sync::mpsc::UnboundedSender<Event>,
}

fn upload_part(
    t: &Target<'_>,
    upload_id: &str,
    part: ReadPart,
    checksum: String,
    source: PartSource,
) -> impl Future<Output = PartResult> + Send + 'static {
    let s3 = t.s3.clone();
    let dest = t.dest();
    let upload_id = upload_id.to_string();
    async move {
        let len = part.data.len() as u64;
        let mut data = part.data.clone();
        let mut attempt = 1;
        let etag = loop {
            let failure = match send_part(&s3, &dest, &upload_id, part.number, &checksum, data.clone()).await {
                Ok(etag) => break etag,
                Err(f) => f,
            };
            if !failure.is_corruption() {
                return Err(failure.into_error("the upload of a part to", &dest));
            }
            if attempt == CORRUPTION_ATTEMPTS {
                return Err(UploadError::Corrupted {
                    what: format!("part {}", part.number),
                    bucket: dest.bucket.clone(),
                    key: dest.key.clone(),
                    attempts: attempt,
                    detail: failure.detail().to_string(),
                });
            }
            attempt += 1;
            let _ = source.notes.send(Event::UploadResent {
                part: Some(part.number),
                attempt,
                attempts: CORRUPTION_ATTEMPTS,
                detail: failure.detail().to_string(),
            });
            tokio::time::sleep(corruption_backoff(attempt)).await;
            data = reread(&source, len, part.number, part.crc).await?;
        };
        drop(data);
        let completed = completed(part.number, &etag, &checksum);
        Ok(PartDone { completed, len, buf: part.data.try_into_mut().ok() })
    }
}

/// One UploadPart; the part's ETag.
async fn send_part(
    s3: &aws_sdk_s3::Client,
    dest: &Dest,
    upload_id: &str,
    number: u32,
    checksum: &str,
    data: Bytes,
) -> Result<String, Failure> {
    let len = data.len() as i64;
    let out = s3
        .upload_part()
        .bucket(&dest.bucket)
        .key(&dest.key)
        .upload_id(upload_id)
        .part_number(number as i32)
        .expected_bucket_owner(&dest.owner)
        // Set by ferry, so the SDK neither recomputes it nor switches to
        // aws-chunked encoding; S3 checks the part against it.
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .checksum_crc64_nvme(checksum)
        .content_length(len)
        .body(ByteStream::from(data))
        // The x-amz-checksum-crc64nvme above already proves the body to S3;
        // signing the payload too would hash every part a second time.
        .customize()
        // Time to send the part before the answer is overdue.
        .config_override(aws_sdk_s3::config::Builder::default().timeout_config(crate::deadline::for_upload(len as u64)))
        .disable_payload_signing()
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    Ok(unquote(out.e_tag()))
}

/// Part `number` read again from the bundle for a re-send, proven to be the
/// bytes it was checksummed as: the re-send is the file's, not memory's.
async fn reread(source: &PartSource, len: u64, number: u32, crc: u64) -> Result<Bytes, UploadError> {
    let (path, offset) = (source.path.clone(), source.offset);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut f = File::open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut data = vec![0; len as usize];
        f.read_exact(&mut data)?;
        Ok(data)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map_err(|e| UploadError::Read { path: source.path.display().to_string(), detail: e.to_string() })?;
    let found = crate::bundle::sums::crc64nvme(&read);
    if found != crc {
        return Err(UploadError::Changed {
            path: source.path.display().to_string(),
            expected: format!("CRC-64/NVME {crc:016x} for part {number}"),
            found: format!("CRC-64/NVME {found:016x}"),
        });
    }
    Ok(Bytes::from(read))
}

async fn create(t: &Target<'_>, bundle: &Bundle) -> Result<String, UploadError> {
    let mut req =
        t.s3.create_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .expected_bucket_owner(&t.owner)
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_type(ChecksumType::FullObject)
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

/// The newest unfinished CRC-64/NVME upload of exactly this key, with its
/// parts. Older ones, or ones with another checksum (an earlier ferry's
/// SHA-256 uploads, whose parts cannot be completed as a full-object
/// CRC-64/NVME), are aborted.
async fn resumable(t: &Target<'_>, reporter: &dyn Reporter) -> Result<Option<(String, BTreeMap<i32, RemotePart>)>, UploadError> {
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
        let full = u.checksum_type().is_none_or(|t| *t == ChecksumType::FullObject);
        if chosen.is_none() && u.checksum_algorithm() == Some(&ChecksumAlgorithm::Crc64Nvme) && full {
            chosen = Some(id.to_string());
        } else {
            abort_reporting(t, id, reporter).await;
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
                abort_reporting(t, &id, reporter).await;
                return Ok(None);
            }
            Err(e) => return Err(t.fail("to list the uploaded parts of", Failure::from_sdk(&e))),
        };
        for p in page.parts() {
            if let (Some(n), Some(size)) = (p.part_number(), p.size()) {
                let remote = RemotePart {
                    size: size as u64,
                    etag: unquote(p.e_tag()),
                    checksum_crc64nvme: p.checksum_crc64_nvme().map(String::from),
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

/// Sends of AbortMultipartUpload before ferry gives up on removing an upload.
const ABORT_ATTEMPTS: u32 = 3;

/// Aborts `upload_id` and confirms it is gone; if it cannot, says so as a
/// warning (the upload's own error, if any, stays the command's error) with
/// how to remove it by hand, since its parts are billed until then.
async fn abort_reporting(t: &Target<'_>, upload_id: &str, reporter: &dyn Reporter) {
    if let Err(why) = abort_and_confirm(t, upload_id).await {
        reporter.report(&Event::Warning {
            message: format!(
                "the incomplete multipart upload {upload_id} of s3://{bucket}/{key} could not be removed: {why} Its parts \
                 are billed until it is: `aws s3api abort-multipart-upload --bucket {bucket} --key {key} --upload-id \
                 {upload_id}` removes it, and a lifecycle rule that aborts incomplete multipart uploads does it for you.",
                bucket = t.bucket,
                key = t.key,
            ),
        });
    }
}

/// AbortMultipartUpload, then ListMultipartUploads / ListParts to see that
/// the upload is really gone; again (with a pause) while it is still listed.
async fn abort_and_confirm(t: &Target<'_>, upload_id: &str) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=ABORT_ATTEMPTS {
        let sent =
            t.s3.abort_multipart_upload()
                .bucket(&t.bucket)
                .key(&t.key)
                .upload_id(upload_id)
                .expected_bucket_owner(&t.owner)
                .send()
                .await;
        if let Err(e) = sent {
            let f = Failure::from_sdk(&e);
            // Already gone is what ferry wants; anything else is an answer
            // repeating will not change (the SDK retried the transient ones).
            if e.code() != Some("NoSuchUpload") {
                return Err(format!(
                    "S3 refused AbortMultipartUpload: {}. {}",
                    f.detail(),
                    f.remedy("to abort the upload to", &t.dest())
                ));
            }
        }
        match parts_left(t, upload_id).await {
            Ok(None) => return Ok(()),
            Ok(Some(parts)) => {
                let parts = parts.map(|n| format!(", with {n} part(s),")).unwrap_or_default();
                last = format!("it was still listed{parts} after {attempt} abort(s).");
            }
            Err(detail) => return Err(format!("the abort was sent, but could not be confirmed: {detail}.")),
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
    Err(last)
}

/// Whether S3 still lists the upload (ListMultipartUploads), and then how
/// many parts it holds (ListParts, for the message; `None` if that cannot be
/// read). `Ok(None)`: the upload is gone.
async fn parts_left(t: &Target<'_>, upload_id: &str) -> Result<Option<Option<usize>>, String> {
    let listed =
        t.s3.list_multipart_uploads()
            .bucket(&t.bucket)
            .prefix(&t.key)
            .expected_bucket_owner(&t.owner)
            .send()
            .await
            .map_err(|e| format!("ListMultipartUploads: {}", Failure::from_sdk(&e).detail()))?;
    if !listed.uploads().iter().any(|u| u.upload_id() == Some(upload_id)) {
        return Ok(None);
    }
    let parts = t.s3.list_parts().bucket(&t.bucket).key(&t.key).upload_id(upload_id).expected_bucket_owner(&t.owner).send().await;
    match parts {
        Err(e) if e.code() == Some("NoSuchUpload") => Ok(None),
        Err(_) => Ok(Some(None)),
        Ok(page) => Ok(Some(Some(page.parts().len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(checksum: Option<&str>) -> RemotePart {
        RemotePart { size: 1, etag: "0CC175B9C0F1B6A831C399E269772661".into(), checksum_crc64nvme: checksum.map(String::from) }
    }

    #[test]
    fn parts_read_from_the_file_give_the_whole_files_crc_and_sha256_and_each_parts_crc() {
        // Parts of a size that is not a multiple of a read piece, the last
        // shorter, read into a buffer handed back each time as the upload's
        // pool does.
        let data: Vec<u8> = (0..1_300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &data).unwrap();
        let part_len = crate::bundle::sums::PIECE + 12_345;
        for with_sha in [false, true] {
            let (mut f, mut whole, mut buf) = (File::open(file.path()).unwrap(), Whole::new(with_sha), BytesMut::new());
            for (i, expected) in data.chunks(part_len).enumerate() {
                let (f2, w2, part) = read_part(f, whole, buf, i as u32 + 1, expected.len() as u64, false).unwrap();
                assert_eq!(&part.data[..], expected);
                assert_eq!(part.crc, crate::bundle::sums::crc64nvme(expected));
                assert_eq!(part.data.as_ptr() as usize % crate::bundle::sums::ALIGN, 0);
                (f, whole, buf) = (f2, w2, part.data.try_into_mut().unwrap());
            }
            let (crc, sha) = whole.finish();
            assert_eq!(crc, crate::bundle::sums::crc64nvme(&data));
            let expected = with_sha.then(|| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data)));
            assert_eq!(sha, expected);
        }
        assert_eq!(Whole::new(false).finish().0, crate::bundle::sums::crc64nvme(&[]));
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
