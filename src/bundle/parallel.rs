//! The bundle writers' engine: chunks of input deflated (or only checksummed)
//! on worker threads, handed back in the order they were queued, with a
//! bounded number in flight.
//!
//! Everything that decides the archive's bytes depends on the content alone:
//! the chunk size is a constant, whether an entry is stored or deflated is
//! decided from its first [`SAMPLE`] bytes ([`should_store`]), and each chunk
//! after the first is deflated with the previous 32 KiB as its dictionary and
//! ends on a sync flush (as pigz does), so the chunks concatenate into one
//! deflate stream. The number of threads changes only how fast.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Input bytes per job: the unit of parallel work and of memory.
pub const CHUNK: usize = 1 << 20;
/// Deflate's window: what a chunk may refer back to in the one before it.
pub const DICT: usize = 32 << 10;
/// How much of an entry decides stored or deflated.
pub const SAMPLE: usize = 64 << 10;
/// The level entries that compress are deflated at (zlib's default).
pub const LEVEL: u32 = 6;
/// Most worker threads used: beyond this, memory (about 2 × threads chunks)
/// grows faster than a disk can feed them.
pub const MAX_THREADS: usize = 16;

/// Worker threads to use: `FERRY_BUNDLE_THREADS` if set (1..=16), else the
/// cores available. The archive's bytes do not depend on it.
pub fn threads() -> usize {
    let from_env = std::env::var("FERRY_BUNDLE_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok());
    from_env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).clamp(1, MAX_THREADS)
}

/// Whether an entry whose first bytes are `sample` (its first [`SAMPLE`]
/// bytes, or all of it if shorter) is stored rather than deflated: when
/// deflating the sample at the fastest level saves less than 1/16 of it.
/// Already-compressed data (archives, images, jars, random bytes) is stored
/// at disk speed; an empty entry is stored.
pub fn should_store(sample: &[u8]) -> bool {
    if sample.is_empty() {
        return true;
    }
    let packed = deflate(&[], sample, true, Compression::fast());
    packed.len() as u64 * 16 >= sample.len() as u64 * 15
}

/// Raw deflate of `data`, continuing a stream whose previous bytes end in
/// `dict`. `last` ends the stream (BFINAL); otherwise the output ends on a
/// sync flush, byte-aligned, so the next chunk's output can follow it.
pub fn deflate(dict: &[u8], data: &[u8], last: bool, level: Compression) -> Vec<u8> {
    let mut c = Compress::new(level, false);
    if !dict.is_empty() {
        c.set_dictionary(dict).expect("a dictionary of at most 32 KiB is always accepted");
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 64);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&data[consumed..], &mut out, flush).expect("deflate into a Vec cannot fail");
        let done = c.total_in() as usize == data.len()
            && match status {
                Status::StreamEnd => true,
                // A sync flush is complete when it left room to spare.
                Status::Ok | Status::BufError => !last && out.len() < out.capacity(),
            };
        if done {
            return out;
        }
        out.reserve(out.capacity().max(4096));
    }
}

/// A CRC-32 (zip's and gzip's) of part of a stream, to be joined in order.
#[derive(Clone, Debug)]
pub struct Crc {
    hasher: crc32fast::Hasher,
}

impl Crc {
    /// The CRC of `data`.
    pub fn of(data: &[u8]) -> Crc {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(data);
        Crc { hasher }
    }

    /// The CRC of nothing.
    pub fn empty() -> Crc {
        Crc { hasher: crc32fast::Hasher::new() }
    }

    /// Extends this CRC by the bytes `next` was computed over.
    pub fn append(&mut self, next: &Crc) {
        self.hasher.combine(&next.hasher);
    }

    /// The value.
    pub fn value(&self) -> u32 {
        self.hasher.clone().finalize()
    }
}

/// Jobs run on worker threads; results come back in the order the jobs
/// were pushed. The caller bounds memory: at most [`Pool::window`] jobs are
/// pushed and not yet popped.
pub struct Pool<J, R> {
    jobs: Option<Sender<(u64, J)>>,
    results: Receiver<(u64, R)>,
    ready: BTreeMap<u64, R>,
    next_in: u64,
    next_out: u64,
    window: usize,
}

impl<J: Send, R: Send> Pool<J, R> {
    /// Runs `body` with a pool of `threads` workers applying `work`; the
    /// workers are stopped and joined before this returns.
    pub fn scoped<T>(threads: usize, work: impl Fn(J) -> R + Sync, body: impl FnOnce(&mut Pool<J, R>) -> T) -> T {
        let threads = threads.max(1);
        std::thread::scope(|s| {
            let (job_tx, job_rx) = channel::<(u64, J)>();
            let (res_tx, res_rx) = channel::<(u64, R)>();
            let job_rx = Arc::new(Mutex::new(job_rx));
            let work = &work;
            for _ in 0..threads {
                let (job_rx, res_tx) = (Arc::clone(&job_rx), res_tx.clone());
                s.spawn(move || {
                    loop {
                        // The lock is held only to take the next job.
                        let next = job_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok((n, job))) = next else { return };
                        if res_tx.send((n, work(job))).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(res_tx);
            let mut pool = Pool {
                jobs: Some(job_tx),
                results: res_rx,
                ready: BTreeMap::new(),
                next_in: 0,
                next_out: 0,
                window: 2 * threads + 2,
            };
            let out = body(&mut pool);
            // Closing the queue ends the workers after their current job.
            pool.jobs = None;
            out
        })
    }

    /// Whether pushing now would exceed the window (2 × threads + 2 jobs:
    /// enough to keep every worker busy while the writer drains): pop first.
    pub fn is_full(&self) -> bool {
        self.outstanding() >= self.window
    }

    /// Jobs pushed and not yet popped.
    pub fn outstanding(&self) -> usize {
        (self.next_in - self.next_out) as usize
    }

    /// Queues `job`.
    pub fn push(&mut self, job: J) {
        let n = self.next_in;
        self.next_in += 1;
        if let Some(tx) = &self.jobs {
            // Fails only if every worker died; pop then reports it.
            let _ = tx.send((n, job));
        }
    }

    /// The oldest job's result if it is done, without waiting.
    pub fn pop_ready(&mut self) -> Option<R> {
        while let Ok((n, r)) = self.results.try_recv() {
            self.ready.insert(n, r);
        }
        self.take_next()
    }

    /// The oldest job's result, waiting for it; `None` when nothing is
    /// outstanding.
    ///
    /// # Panics
    /// If a worker thread panicked (the scope re-raises it).
    pub fn pop(&mut self) -> Option<R> {
        if self.outstanding() == 0 {
            return None;
        }
        while !self.ready.contains_key(&self.next_out) {
            match self.results.recv() {
                Ok((n, r)) => {
                    self.ready.insert(n, r);
                }
                Err(_) => panic!("a bundle worker thread died"),
            }
        }
        self.take_next()
    }

    fn take_next(&mut self) -> Option<R> {
        let r = self.ready.remove(&self.next_out)?;
        self.next_out += 1;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    fn text(len: usize) -> Vec<u8> {
        let words = ["deploy ", "bundle ", "ferry ", "zip ", "appspec ", "hook\n"];
        let mut out = Vec::with_capacity(len);
        let mut i = 7usize;
        while out.len() < len {
            i = i.wrapping_mul(2_654_435_761).wrapping_add(1);
            out.extend_from_slice(words[(i >> 7) % words.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn chunks_deflated_apart_with_dictionaries_inflate_as_one_stream() {
        let data = text(3 * CHUNK + 12345);
        let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        let mut stream = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let dict = if i == 0 { &[][..] } else { &chunks[i - 1][CHUNK - DICT..] };
            stream.extend(deflate(dict, c, i == chunks.len() - 1, Compression::new(LEVEL)));
        }
        assert_eq!(inflate(&stream), data);
        assert!(stream.len() < data.len() / 3, "the dictionary keeps text compressing across chunks");
    }

    #[test]
    fn empty_last_chunk_ends_the_stream() {
        let mut stream = deflate(&[], b"hello", false, Compression::new(LEVEL));
        stream.extend(deflate(b"hello", b"", true, Compression::new(LEVEL)));
        assert_eq!(inflate(&stream), b"hello");
    }

    #[test]
    fn random_bytes_are_stored_and_text_is_deflated() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..SAMPLE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(should_store(&noise));
        assert!(!should_store(&text(SAMPLE)));
        assert!(should_store(b""));
    }

    #[test]
    fn crc_parts_join_to_the_crc_of_the_whole() {
        let data = text(100_000);
        let mut crc = Crc::empty();
        for part in data.chunks(7777) {
            crc.append(&Crc::of(part));
        }
        assert_eq!(crc.value(), crc32fast::hash(&data));
    }

    #[test]
    fn results_come_back_in_push_order_whatever_finishes_first() {
        for threads in [1, 2, 5] {
            let got = Pool::scoped(
                threads,
                |n: u64| {
                    std::thread::sleep(std::time::Duration::from_millis((n * 7919) % 5));
                    n * 2
                },
                |pool| {
                    let mut got = Vec::new();
                    for n in 0..50 {
                        while pool.is_full() {
                            got.push(pool.pop().unwrap());
                        }
                        pool.push(n);
                        while let Some(r) = pool.pop_ready() {
                            got.push(r);
                        }
                    }
                    while let Some(r) = pool.pop() {
                        got.push(r);
                    }
                    got
                },
            );
            assert_eq!(got, (0..50).map(|n| n * 2).collect::<Vec<_>>(), "{threads} threads");
        }
    }
}
