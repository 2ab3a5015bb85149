//! ranged: the running bundle read by byte ranges (GetObject with `Range`),
//! never whole: its tail, its central directory and, when small, its
//! appspec. Every request and byte is counted for the plan.

use aws_sdk_s3::primitives::ByteStream;

use super::zipdir::{self, Entry, Located};
use crate::aws_error::describe_sdk_error;
use crate::event::RangedRead;

/// The largest compressed appspec read; a bigger one is not compared.
const APPSPEC_MAX: u64 = 1 << 20;
/// The largest central directory read (about 200 000 entries).
const DIRECTORY_MAX: u64 = 16 << 20;

/// One S3 object, pinned to the version or eTag deployed.
pub struct Object<'a> {
    /// The client.
    pub s3: &'a aws_sdk_s3::Client,
    /// Bucket.
    pub bucket: &'a str,
    /// Key.
    pub key: &'a str,
    /// Version deployed, if the bucket is versioned.
    pub version: Option<&'a str>,
    /// eTag deployed: a changed object is refused, not misread.
    pub etag: Option<&'a str>,
    /// The account expected to own the bucket.
    pub owner: &'a str,
    /// What was read so far.
    pub read: RangedRead,
}

impl Object<'_> {
    /// Bytes `range` (`bytes=A-B` or `bytes=-N`) and the object's size.
    async fn get(&mut self, range: String) -> Result<(Vec<u8>, u64), String> {
        let out = self
            .s3
            .get_object()
            .bucket(self.bucket)
            .key(self.key)
            .range(range)
            .set_version_id(self.version.map(String::from))
            .set_if_match(self.etag.map(|e| format!("\"{}\"", e.trim_matches('"'))))
            .expected_bucket_owner(self.owner)
            .send()
            .await
            .map_err(|e| describe_sdk_error(&e))?;
        self.read.requests += 1;
        let total = out.content_range().and_then(|r| r.rsplit('/').next()).and_then(|t| t.parse().ok());
        let body: ByteStream = out.body;
        let bytes = body.collect().await.map_err(|e| format!("the body broke off: {e}"))?.into_bytes().to_vec();
        self.read.bytes += bytes.len() as u64;
        let size = total.unwrap_or(bytes.len() as u64);
        self.read.object_size = size;
        Ok((bytes, size))
    }

    async fn span(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        if len == 0 {
            return Ok(Vec::new());
        }
        Ok(self.get(format!("bytes={offset}-{}", offset + len - 1)).await?.0)
    }

    /// The central directory's entries.
    pub async fn entries(&mut self) -> Result<Vec<Entry>, String> {
        let (tail, size) = self.get(format!("bytes=-{}", zipdir::TAIL)).await?;
        let tail_start = size - tail.len() as u64;
        let dir = match zipdir::locate(&tail, tail_start)? {
            Located::Directory(d) => d,
            Located::Zip64RecordAt(at) => zipdir::zip64_record(&self.span(at, 56).await?)?,
        };
        if dir.size > DIRECTORY_MAX {
            return Err(format!("its central directory is {} bytes, more than ferry reads for a plan", dir.size));
        }
        // The directory is usually inside the tail already read.
        let cd = if dir.offset >= tail_start {
            let from = (dir.offset - tail_start) as usize;
            tail.get(from..from + dir.size as usize).ok_or("the central directory runs past the end")?.to_vec()
        } else {
            self.span(dir.offset, dir.size).await?
        };
        zipdir::entries(&cd)
    }

    /// One entry's uncompressed bytes (stored or deflated), when it is small.
    pub async fn read_entry(&mut self, entry: &Entry) -> Result<Vec<u8>, String> {
        if entry.compressed_size > APPSPEC_MAX {
            return Err(format!(
                "{} is {} bytes compressed, more than ferry reads for a plan",
                entry.name, entry.compressed_size
            ));
        }
        let header = self.span(entry.local_offset, zipdir::LOCAL_HEADER).await?;
        let start = entry.local_offset + zipdir::data_start(&header)?;
        let data = self.span(start, entry.compressed_size).await?;
        super::local::inflate(entry.method, &data, entry.size)
    }
}
