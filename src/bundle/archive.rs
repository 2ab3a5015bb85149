//! Writes a [`Tree`] as a zip, tar or tgz that depends only on the names,
//! contents, modes and times of its entries: entries sorted, directories
//! included (so empty ones reach the instance), each file's own mode bits
//! (setuid, setgid and sticky too; links 0777), each entry's time as
//! [`super::tree::stamp`] gives it, owner root, no other host fields. The same
//! tree gives the same bytes, so the same SHA-256 and S3 key, whatever the
//! number of threads.
//!
//! Zip entries are read and deflated (or, when they do not compress, only
//! checksummed) in chunks on [`parallel`] workers and written in order by
//! [`zipstream`]; a tgz's tar stream is deflated in parallel chunks the same
//! way. Every archive is hashed as it is written: no second read.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use flate2::Compression;

use super::parallel::{self, CHUNK, Crc, DICT, LEVEL, Pool, SAMPLE};
use super::sums::{Summer, Sums, aligned};
use super::tree::{Entry, EntryKind, Seen, Tree};
use super::zipstream::{Method, Streaming, ZipStream};
use super::{BundleError, BundleType, io_err};

/// The full Unix mode of `entry`: its type and its permission bits.
fn mode(entry: &Entry) -> u32 {
    let kind = match entry.kind {
        EntryKind::File { .. } => 0o100000,
        EntryKind::Symlink { .. } => 0o120000,
        EntryKind::Dir => 0o040000,
    };
    kind | entry.mode
}

/// What [`write`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Archive size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the archive.
    pub sha256: String,
    /// CRC-64/NVME of the archive, S3's full-object checksum.
    pub crc64nvme: u64,
    /// CRC-32 of each tree entry's content (a link's target), in tree order:
    /// what the bundle cache re-checks a just-modified file against.
    pub crcs: Vec<u32>,
}

/// Writes `tree` as `kind` into `file` on [`parallel::threads`] threads.
pub fn write(tree: &Tree, kind: BundleType, file: File) -> Result<Written, BundleError> {
    write_with(tree, kind, file, parallel::threads())
}

/// Writes `tree` as `kind` into `file` using `threads` worker threads; the
/// bytes are the same for any `threads`.
pub fn write_with(tree: &Tree, kind: BundleType, file: File, threads: usize) -> Result<Written, BundleError> {
    let out = HashingWriter::new(BufWriter::with_capacity(256 << 10, file));
    let werr = io_err("write the bundle for", &tree.root);
    let (out, crcs) = match kind {
        BundleType::Zip => write_zip(tree, out, threads)?,
        BundleType::Tar => write_tar(tree, out)?,
        BundleType::Tgz => Pool::scoped(threads, gz_chunk, |pool| {
            let gz = GzChunks::new(out, pool).map_err(io_err("write the bundle for", &tree.root))?;
            let (gz, crcs) = write_tar(tree, gz)?;
            Ok::<_, BundleError>((gz.finish().map_err(io_err("write the bundle for", &tree.root))?, crcs))
        })?,
    };
    let sums = out.finish().map_err(werr)?;
    Ok(Written { size: sums.size, sha256: sums.sha256, crc64nvme: sums.crc64nvme, crcs })
}

// ---- zip -------------------------------------------------------------------

/// Work for a zip worker.
enum ZipJob {
    /// A whole entry of at most one chunk, or a link's target: read,
    /// choose stored or deflated, compress.
    Whole { index: usize, source: Source },
    /// One chunk of a larger entry whose method is already chosen.
    Chunk { index: usize, file: Arc<File>, entry_len: u64, offset: u64, len: usize, method: Method, last: bool },
}

enum Source {
    File { file: Arc<File>, len: u64 },
    Bytes(Vec<u8>),
}

/// A job's output, in the archive's order.
struct ZipPiece {
    index: usize,
    method: Method,
    crc: Crc,
    raw_len: u64,
    /// Stored bytes (the read buffer itself) or deflated ones.
    data: Bytes,
    /// For a chunk: the entry's size as listed, and whether it ends the entry.
    chunk: Option<(u64, bool)>,
    /// The file, on the piece that ends a file's entry: checked once more
    /// when all of it was read.
    done: Option<Arc<File>>,
}

fn write_zip<W: Write>(tree: &Tree, out: W, threads: usize) -> Result<(W, Vec<u32>), BundleError> {
    let werr = |e: io::Error| io_err("write the bundle for", &tree.root)(e);
    Pool::scoped(
        threads,
        |job| zip_job(tree, job),
        |pool| {
            let mut w = ZipWriterState { tree, zip: ZipStream::new(out), streaming: None, crcs: vec![0; tree.entries.len()] };
            for (index, entry) in tree.entries.iter().enumerate() {
                let jobs = match &entry.kind {
                    EntryKind::Symlink { target } => {
                        vec![ZipJob::Whole { index, source: Source::Bytes(target.clone().into_bytes()) }]
                    }
                    EntryKind::File { .. } => plan_file(index, entry)?,
                    EntryKind::Dir => vec![ZipJob::Whole { index, source: Source::Bytes(Vec::new()) }],
                };
                for job in jobs {
                    while pool.is_full() {
                        w.accept(pool.pop().expect("jobs are outstanding")?)?;
                    }
                    pool.push(job);
                    while let Some(piece) = pool.pop_ready() {
                        w.accept(piece?)?;
                    }
                }
            }
            while let Some(piece) = pool.pop() {
                w.accept(piece?)?;
            }
            let out = w.zip.finish().map_err(werr)?;
            Ok((out, w.crcs))
        },
    )
}

/// The jobs for one file: one if it fits a chunk, else a chunk each, all
/// stored or all deflated as its first [`SAMPLE`] bytes say. The file must
/// still be what the walk saw ([`BundleError::Changed`] if not), and its
/// size as walked is the size archived.
fn plan_file(index: usize, entry: &Entry) -> Result<Vec<ZipJob>, BundleError> {
    let path = &entry.path;
    let file = open_as_seen(entry)?;
    let len = file.len;
    let file = Arc::new(file.file);
    if len <= CHUNK as u64 {
        return Ok(vec![ZipJob::Whole { index, source: Source::File { file, len } }]);
    }
    let mut sample = aligned(SAMPLE);
    read_at(&file, &mut sample, 0).map_err(changed(path))?;
    let method = if parallel::should_store(&sample) { Method::Stored } else { Method::Deflated };
    let chunks = len.div_ceil(CHUNK as u64);
    Ok((0..chunks)
        .map(|i| {
            let offset = i * CHUNK as u64;
            let part = (len - offset).min(CHUNK as u64) as usize;
            ZipJob::Chunk { index, file: Arc::clone(&file), entry_len: len, offset, len: part, method, last: i + 1 == chunks }
        })
        .collect())
}

/// A file opened for the archive, with the size the walk saw.
struct Opened {
    file: File,
    len: u64,
}

/// Opens `entry`'s file, refusing it ([`BundleError::Changed`]) when its
/// size or modification time is no longer what the walk saw.
fn open_as_seen(entry: &Entry) -> Result<Opened, BundleError> {
    let file = File::open(&entry.path).map_err(io_err("read", &entry.path))?;
    let now = Seen::of(&file.metadata().map_err(io_err("read", &entry.path))?);
    let seen = entry.seen.unwrap_or(now);
    if now != seen {
        return Err(BundleError::Changed { path: entry.path.clone() });
    }
    Ok(Opened { file, len: seen.len })
}

/// After every byte of `entry` was read: the file is still as walked, so
/// no write landed between the first read and the last.
fn still_as_seen(entry: &Entry, file: &File) -> Result<(), BundleError> {
    let now = Seen::of(&file.metadata().map_err(io_err("read", &entry.path))?);
    if entry.seen.is_some_and(|seen| seen != now) {
        return Err(BundleError::Changed { path: entry.path.clone() });
    }
    Ok(())
}

fn zip_job(tree: &Tree, job: ZipJob) -> Result<ZipPiece, BundleError> {
    match job {
        ZipJob::Whole { index, source } => {
            let mut done = None;
            let data = match source {
                Source::Bytes(b) => Bytes::from(b),
                Source::File { file, len } => {
                    let mut buf = aligned(len as usize);
                    read_at(&file, &mut buf, 0).map_err(changed(&tree.entries[index].path))?;
                    done = Some(file);
                    buf.freeze()
                }
            };
            let crc = Crc::of(&data);
            let raw_len = data.len() as u64;
            let link = matches!(tree.entries[index].kind, EntryKind::Symlink { .. } | EntryKind::Dir);
            // A link's target is stored: unzip reads it back as the link.
            if link || parallel::should_store(&data[..data.len().min(SAMPLE)]) {
                Ok(ZipPiece { index, method: Method::Stored, crc, raw_len, data, chunk: None, done })
            } else {
                let packed = parallel::deflate(&[], &data, true, Compression::new(LEVEL));
                Ok(ZipPiece { index, method: Method::Deflated, crc, raw_len, data: packed.into(), chunk: None, done })
            }
        }
        ZipJob::Chunk { index, file, entry_len, offset, len, method, last } => {
            let path = &tree.entries[index].path;
            let dict_len = if method == Method::Deflated { (offset as usize).min(DICT) } else { 0 };
            // Aligned, as the upload's reads are: the kernel's copy into a
            // buffer 16 bytes past a page boundary (where a plain `vec!` of
            // this size lands) costs four times the system time.
            let mut buf: BytesMut = aligned(dict_len + len);
            read_at(&file, &mut buf, offset - dict_len as u64).map_err(changed(path))?;
            let (dict, data) = buf.split_at(dict_len);
            let crc = Crc::of(data);
            let data = match method {
                Method::Stored => buf.freeze().slice(dict_len..),
                Method::Deflated => parallel::deflate(dict, data, last, Compression::new(LEVEL)).into(),
            };
            let done = last.then_some(file);
            Ok(ZipPiece { index, method, crc, raw_len: len as u64, data, chunk: Some((entry_len, last)), done })
        }
    }
}

struct ZipWriterState<'t, W> {
    tree: &'t Tree,
    zip: ZipStream<W>,
    streaming: Option<(Streaming, Crc, u64)>,
    crcs: Vec<u32>,
}

impl<W: Write> ZipWriterState<'_, W> {
    /// Writes `piece`, after checking that a file whose last piece it is
    /// did not change while it was read.
    fn accept(&mut self, piece: ZipPiece) -> Result<(), BundleError> {
        if let Some(file) = &piece.done {
            still_as_seen(&self.tree.entries[piece.index], file)?;
        }
        self.put(piece).map_err(io_err("write the bundle for", &self.tree.root))
    }

    fn put(&mut self, piece: ZipPiece) -> io::Result<()> {
        let entry = &self.tree.entries[piece.index];
        let (mode, time) = (mode(entry), entry.time);
        let Some((entry_len, last)) = piece.chunk else {
            self.crcs[piece.index] = piece.crc.value();
            // A directory is its name with a slash, as zip and unzip spell it.
            let name = if entry.kind == EntryKind::Dir { format!("{}/", entry.name) } else { entry.name.clone() };
            return self.zip.whole(&name, mode, time, piece.method, piece.crc.value(), piece.raw_len, &piece.data);
        };
        let (s, mut crc, mut raw) = match self.streaming.take() {
            Some(open) => open,
            None => (self.zip.begin(&entry.name, mode, time, piece.method, entry_len)?, Crc::empty(), 0),
        };
        self.zip.data(&piece.data)?;
        crc.append(&piece.crc);
        raw += piece.raw_len;
        if last {
            self.crcs[piece.index] = crc.value();
            self.zip.end(s, crc.value(), raw)
        } else {
            self.streaming = Some((s, crc, raw));
            Ok(())
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset`, leaving the file position alone.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::Seek;
        let mut f = file.try_clone()?;
        f.seek(io::SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

/// A short read means the file shrank after it was walked; any other
/// failure is reported as itself.
fn changed(path: &Path) -> impl FnOnce(io::Error) -> BundleError + use<> {
    let path = path.to_path_buf();
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            BundleError::Changed { path }
        } else {
            BundleError::Io { action: "read", path, source: e }
        }
    }
}

// ---- tar and tgz -----------------------------------------------------------

fn write_tar<W: Write>(tree: &Tree, out: W) -> Result<(W, Vec<u32>), BundleError> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut crcs = Vec::with_capacity(tree.entries.len());
    for entry in &tree.entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(entry.time as u64);
        header.set_uid(0);
        header.set_gid(0);
        let werr = io_err("write the bundle for", &entry.path);
        match &entry.kind {
            EntryKind::File { .. } => {
                let opened = open_as_seen(entry)?;
                let len = opened.len;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(len);
                let mut reader = CrcReader { inner: &opened.file, left: len, crc: crc32fast::Hasher::new(), short: false };
                let appended = tar.append_data(&mut header, &entry.name, &mut reader);
                // A short read is the file's doing; any other failure (a
                // full disk) is reported as itself.
                if reader.short {
                    return Err(BundleError::Changed { path: entry.path.clone() });
                }
                appended.map_err(werr)?;
                still_as_seen(entry, &opened.file)?;
                crcs.push(reader.crc.finalize());
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, &entry.name, target).map_err(werr)?;
                crcs.push(crc32fast::hash(target.as_bytes()));
            }
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", entry.name), io::empty()).map_err(werr)?;
                crcs.push(0);
            }
        }
    }
    let out = tar.into_inner().map_err(io_err("write the bundle for", &tree.root))?;
    Ok((out, crcs))
}

/// A file's bytes on their way into a tar: exactly `left` of them,
/// checksummed; an end before that sets `short` (truncated while read).
struct CrcReader<R> {
    inner: R,
    left: u64,
    crc: crc32fast::Hasher,
    short: bool,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.short = true;
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended early"));
        }
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// gzip's fixed header: deflate, no name, mtime 0, no extra flags, OS
/// "unknown" (255), as flate2's GzBuilder writes it.
const GZ_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

struct GzJob {
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
}

fn gz_chunk(job: GzJob) -> (Crc, u64, Vec<u8>) {
    let packed = parallel::deflate(&job.dict, &job.data, job.last, Compression::new(LEVEL));
    (Crc::of(&job.data), job.data.len() as u64, packed)
}

/// A gzip stream whose input is cut into [`CHUNK`]s deflated on the pool.
struct GzChunks<'p, W> {
    out: W,
    pool: &'p mut Pool<GzJob, (Crc, u64, Vec<u8>)>,
    buf: Vec<u8>,
    dict: Vec<u8>,
    crc: Crc,
    len: u64,
}

impl<'p, W: Write> GzChunks<'p, W> {
    fn new(mut out: W, pool: &'p mut Pool<GzJob, (Crc, u64, Vec<u8>)>) -> io::Result<Self> {
        out.write_all(&GZ_HEADER)?;
        Ok(GzChunks { out, pool, buf: Vec::with_capacity(CHUNK), dict: Vec::new(), crc: Crc::empty(), len: 0 })
    }

    fn put(&mut self, (crc, len, packed): (Crc, u64, Vec<u8>)) -> io::Result<()> {
        self.crc.append(&crc);
        self.len += len;
        self.out.write_all(&packed)
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        while self.pool.is_full() {
            let done = self.pool.pop().expect("jobs are outstanding");
            self.put(done)?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(if last { 0 } else { CHUNK }));
        let dict = std::mem::replace(&mut self.dict, data[data.len().saturating_sub(DICT)..].to_vec());
        self.pool.push(GzJob { dict, data, last });
        while let Some(done) = self.pool.pop_ready() {
            self.put(done)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while let Some(done) = self.pool.pop() {
            self.put(done)?;
        }
        self.out.write_all(&self.crc.value().to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzChunks<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---- hashing ---------------------------------------------------------------

/// Passes bytes through to `inner` while hashing and counting them, so the
/// archive's SHA-256 costs no second read.
struct HashingWriter<W> {
    inner: W,
    sums: Summer,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, sums: Summer::default() }
    }

    fn finish(mut self) -> io::Result<Sums> {
        self.inner.flush()?;
        Ok(self.sums.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sums.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Small and multi-chunk files, compressible and not, a link, an empty file.
    fn mixed_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        std::fs::create_dir_all(p.join("site/assets")).unwrap();
        std::fs::write(p.join("site/index.html"), "<h1>hello</h1>\n".repeat(2000)).unwrap();
        std::fs::write(p.join("site/empty"), "").unwrap();
        std::fs::write(p.join("site/assets/random.bin"), noise(3 * CHUNK + 77, 5)).unwrap();
        std::fs::write(p.join("site/assets/log.txt"), b"GET /index.html 200 1432 ms\n".repeat(150_000)).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("index.html", p.join("site/current")).unwrap();
        dir
    }

    fn bundle_bytes(dir: &Path, kind: BundleType, threads: usize) -> (Written, Vec<u8>) {
        let tree = Tree::walk(dir).unwrap();
        let out = tempfile::NamedTempFile::new().unwrap();
        let written = write_with(&tree, kind, out.reopen().unwrap(), threads).unwrap();
        let bytes = std::fs::read(out.path()).unwrap();
        (written, bytes)
    }

    #[test]
    fn same_tree_gives_the_same_bytes_whatever_the_thread_count() {
        let dir = mixed_tree();
        for kind in [BundleType::Zip, BundleType::Tar, BundleType::Tgz] {
            let (w1, one) = bundle_bytes(dir.path(), kind, 1);
            for threads in [2, 3, 8] {
                let (w, many) = bundle_bytes(dir.path(), kind, threads);
                assert!(one == many, "{kind:?}: {threads} threads changed the bytes");
                assert_eq!(w, w1);
            }
            assert_eq!(w1.size, one.len() as u64);
            use sha2::Digest as _;
            assert_eq!(w1.sha256, hex::encode(sha2::Sha256::digest(&one)), "{kind:?}: the SHA-256 is of the bytes written");
            assert_eq!(w1.crc64nvme, super::super::sums::crc64nvme(&one), "{kind:?}: the CRC-64/NVME too");
        }
    }

    #[test]
    fn zip_entries_read_back_with_stored_noise_and_deflated_text() {
        let dir = mixed_tree();
        let (written, bytes) = bundle_bytes(dir.path(), BundleType::Zip, 2);
        let mut zip = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
        let tree = Tree::walk(dir.path()).unwrap();
        for (i, entry) in tree.entries.iter().enumerate() {
            if entry.kind == EntryKind::Dir {
                continue;
            }
            let mut e = zip.by_name(&entry.name).unwrap();
            let mut got = Vec::new();
            e.read_to_end(&mut got).unwrap();
            let want = match &entry.kind {
                EntryKind::File { .. } => std::fs::read(&entry.path).unwrap(),
                EntryKind::Symlink { target } => target.as_bytes().to_vec(),
                EntryKind::Dir => unreachable!("skipped above"),
            };
            assert!(got == want, "{}", entry.name);
            assert_eq!(e.crc32(), written.crcs[i], "{}", entry.name);
            let expected = match entry.name.as_str() {
                "site/assets/random.bin" | "site/empty" | "site/current" | "appspec.yml" => zip::CompressionMethod::Stored,
                _ => zip::CompressionMethod::Deflated,
            };
            assert_eq!(e.compression(), expected, "{}", entry.name);
        }
        let log = zip.by_name("site/assets/log.txt").unwrap();
        assert!(log.compressed_size() * 20 < log.size(), "text across chunks still compresses: {}", log.compressed_size());
    }

    #[test]
    fn tgz_is_one_gzip_member_of_the_tar() {
        let dir = mixed_tree();
        let (_, tgz) = bundle_bytes(dir.path(), BundleType::Tgz, 3);
        let (_, tar) = bundle_bytes(dir.path(), BundleType::Tar, 3);
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&tgz[..]).read_to_end(&mut unpacked).unwrap();
        assert!(unpacked == tar);
    }
}
