//! Zip records written front to back, never seeking, so the archive can be
//! hashed as it is written (APPNOTE 6.3.10).
//!
//! An entry whose data is in memory (at most one chunk, or a symlink) gets a
//! complete local header. A larger one is streamed: its local header says
//! "sizes follow" (flag bit 3) and a data descriptor after the data carries
//! the CRC and sizes; the central directory carries them too, which is what
//! `unzip`, the CodeDeploy agent's fallback rubyzip, Python and the `zip`
//! crate read. Zip64 fields appear only where a value needs them (an entry
//! near 4 GiB or more, an offset past 4 GiB, more than 65,535 entries);
//! whether a streamed entry is zip64 is decided from its size up front.
//!
//! Nothing of the host but what the caller passes goes in: each entry's
//! Unix mode and time (given in seconds since 1970, UTC), no owners. The
//! time is written twice: as the DOS date and time every reader knows
//! (computed in UTC, floored to 2 s) and as an extended-timestamp extra
//! field (0x5455, "UT"), which `unzip` prefers, so an instance in any time
//! zone restores the same instant.

use std::io::{self, Write};

/// Stored or deflated, as the method field says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Method 0.
    Stored,
    /// Method 8.
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// The extended-timestamp extra field's id; its flag bit 0 says "mtime".
const UT: u16 = 0x5455;
/// Version made by: Unix (3), spec 3.0, as Info-ZIP writes it; unzip takes
/// the Unix mode from the external attributes only for Unix-made entries.
const MADE_BY: u16 = (3 << 8) | 30;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// Streamed entries at least this big are zip64 from the start: deflate can
/// grow incompressible data by a little, so the margin keeps the compressed
/// size of a just-smaller entry under 4 GiB too.
const STREAM_ZIP64_AT: u64 = 0xFFFF_FFFF - (64 << 20);

/// A zip being written to `out`, front to back.
pub struct ZipStream<W> {
    out: W,
    offset: u64,
    central: Vec<u8>,
    entries: u64,
    /// Values at or above this need zip64 fields (4 GiB - 1; lower in tests).
    limit: u64,
    stream_zip64_at: u64,
}

/// A streamed entry whose data is being written.
pub struct Streaming {
    name: String,
    mode: u32,
    time: i64,
    method: Method,
    zip64: bool,
    header_offset: u64,
    data_start: u64,
}

impl<W: Write> ZipStream<W> {
    /// A zip written to `out`.
    pub fn new(out: W) -> ZipStream<W> {
        ZipStream { out, offset: 0, central: Vec::new(), entries: 0, limit: 0xFFFF_FFFF, stream_zip64_at: STREAM_ZIP64_AT }
    }

    /// As [`ZipStream::new`], with zip64 needed from `limit` on: lets tests
    /// reach every zip64 record with small files.
    #[cfg(test)]
    pub fn with_zip64_limit(out: W, limit: u64) -> ZipStream<W> {
        ZipStream { out, offset: 0, central: Vec::new(), entries: 0, limit, stream_zip64_at: limit }
    }

    /// An entry whose (compressed) `data` is all here: CRC and sizes go in
    /// its local header. `mode` is the full Unix mode (type and permissions),
    /// `time` its modification time in seconds since 1970.
    #[allow(clippy::too_many_arguments)]
    pub fn whole(
        &mut self,
        name: &str,
        mode: u32,
        time: i64,
        method: Method,
        crc: u32,
        size: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let (csize, header_offset) = (data.len() as u64, self.offset);
        // Only with a lowered limit in tests: whole entries are one chunk.
        let zip64 = size >= self.limit || csize >= self.limit;
        let flags = name_flags(name);
        let mut h = Vec::with_capacity(30 + name.len() + 29);
        let (c32, s32) = (clamp32(csize, zip64), clamp32(size, zip64));
        local_header(&mut h, version_needed(method, false, zip64), flags, method, time, crc, c32, s32, name);
        let mut extra = ut_field(time);
        if zip64 {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&size.to_le_bytes());
            extra.extend_from_slice(&csize.to_le_bytes());
        }
        h[28..30].copy_from_slice(&(extra.len() as u16).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&extra);
        self.put(&h)?;
        self.put(data)?;
        self.central_record(name, mode, time, flags, method, zip64, crc, csize, size, header_offset);
        Ok(())
    }

    /// Starts an entry whose data follows in pieces; `size` is its expected
    /// uncompressed size, which decides zip64.
    pub fn begin(&mut self, name: &str, mode: u32, time: i64, method: Method, size: u64) -> io::Result<Streaming> {
        let zip64 = size >= self.stream_zip64_at;
        let flags = name_flags(name) | FLAG_DESCRIPTOR;
        let header_offset = self.offset;
        let mut h = Vec::with_capacity(30 + name.len() + 29);
        let sizes = if zip64 { u32::MAX } else { 0 };
        local_header(&mut h, version_needed(method, true, zip64), flags, method, time, 0, sizes, sizes, name);
        let mut extra = ut_field(time);
        if zip64 {
            // Both sizes, as zeros: they follow the data.
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&[0; 16]);
        }
        h[28..30].copy_from_slice(&(extra.len() as u16).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&extra);
        self.put(&h)?;
        Ok(Streaming { name: name.to_string(), mode, time, method, zip64, header_offset, data_start: self.offset })
    }

    /// More of a streamed entry's (compressed) data.
    pub fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(bytes)
    }

    /// Ends a streamed entry with its data descriptor.
    pub fn end(&mut self, entry: Streaming, crc: u32, size: u64) -> io::Result<()> {
        let csize = self.offset - entry.data_start;
        if !entry.zip64 && (csize >= self.limit || size >= self.limit) {
            return Err(io::Error::other(format!(
                "{} grew past 4 GiB while it was read; rebuild the bundle from a directory that is not being written to",
                entry.name
            )));
        }
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        if entry.zip64 {
            d.extend_from_slice(&csize.to_le_bytes());
            d.extend_from_slice(&size.to_le_bytes());
        } else {
            d.extend_from_slice(&(csize as u32).to_le_bytes());
            d.extend_from_slice(&(size as u32).to_le_bytes());
        }
        self.put(&d)?;
        let flags = name_flags(&entry.name) | FLAG_DESCRIPTOR;
        self.central_record(
            &entry.name,
            entry.mode,
            entry.time,
            flags,
            entry.method,
            entry.zip64,
            crc,
            csize,
            size,
            entry.header_offset,
        );
        Ok(())
    }

    /// Writes the central directory and end records; returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        let (cd_offset, cd_size) = (self.offset, self.central.len() as u64);
        let central = std::mem::take(&mut self.central);
        self.put(&central)?;
        let zip64 = self.entries >= 0xFFFF || cd_offset >= self.limit || cd_size >= self.limit;
        let mut e = Vec::with_capacity(98);
        if zip64 {
            let record_offset = self.offset;
            e.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            e.extend_from_slice(&44u64.to_le_bytes());
            e.extend_from_slice(&MADE_BY.to_le_bytes());
            e.extend_from_slice(&45u16.to_le_bytes());
            e.extend_from_slice(&[0; 8]); // this disk, disk of the central directory
            e.extend_from_slice(&self.entries.to_le_bytes());
            e.extend_from_slice(&self.entries.to_le_bytes());
            e.extend_from_slice(&cd_size.to_le_bytes());
            e.extend_from_slice(&cd_offset.to_le_bytes());
            e.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&record_offset.to_le_bytes());
            e.extend_from_slice(&1u32.to_le_bytes());
        }
        let count = if zip64 { 0xFFFF } else { self.entries as u16 };
        e.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        e.extend_from_slice(&[0; 4]);
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&clamp32(cd_size, zip64).to_le_bytes());
        e.extend_from_slice(&clamp32(cd_offset, zip64).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes()); // no comment
        self.put(&e)?;
        Ok(self.out)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn central_record(
        &mut self,
        name: &str,
        mode: u32,
        time: i64,
        flags: u16,
        method: Method,
        zip64: bool,
        crc: u32,
        csize: u64,
        size: u64,
        header_offset: u64,
    ) {
        // A zip64 entry carries both sizes in the extra field (its local
        // header promised them); an offset moves there when it is too big.
        let far = header_offset >= self.limit;
        let mut zip64_extra = Vec::new();
        if zip64 {
            zip64_extra.extend_from_slice(&size.to_le_bytes());
            zip64_extra.extend_from_slice(&csize.to_le_bytes());
        }
        if far {
            zip64_extra.extend_from_slice(&header_offset.to_le_bytes());
        }
        let mut extra = ut_field(time);
        if !zip64_extra.is_empty() {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&(zip64_extra.len() as u16).to_le_bytes());
            extra.extend_from_slice(&zip64_extra);
        }
        let (dos_time, dos_date) = dos(time);
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&MADE_BY.to_le_bytes());
        c.extend_from_slice(&version_needed(method, flags & FLAG_DESCRIPTOR != 0, zip64 || far).to_le_bytes());
        c.extend_from_slice(&flags.to_le_bytes());
        c.extend_from_slice(&method.code().to_le_bytes());
        c.extend_from_slice(&dos_time.to_le_bytes());
        c.extend_from_slice(&dos_date.to_le_bytes());
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&clamp32(csize, zip64).to_le_bytes());
        c.extend_from_slice(&clamp32(size, zip64).to_le_bytes());
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        c.extend_from_slice(&(mode << 16).to_le_bytes());
        c.extend_from_slice(&clamp32(header_offset, far).to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        c.extend_from_slice(&extra);
        self.entries += 1;
    }
}

#[allow(clippy::too_many_arguments)]
fn local_header(
    h: &mut Vec<u8>,
    needed: u16,
    flags: u16,
    method: Method,
    time: i64,
    crc: u32,
    csize: u32,
    size: u32,
    name: &str,
) {
    let (dos_time, dos_date) = dos(time);
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&needed.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&method.code().to_le_bytes());
    h.extend_from_slice(&dos_time.to_le_bytes());
    h.extend_from_slice(&dos_date.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&csize.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
}

/// The extended-timestamp extra field with the modification time only
/// (the same 9 bytes in local and central headers).
fn ut_field(time: i64) -> Vec<u8> {
    let mut f = Vec::with_capacity(9);
    f.extend_from_slice(&UT.to_le_bytes());
    f.extend_from_slice(&5u16.to_le_bytes());
    f.push(1);
    f.extend_from_slice(&(time.clamp(0, u32::MAX as i64) as u32).to_le_bytes());
    f
}

/// DOS (time, date) of `time` in UTC, floored to 2 s, within 1980-2107.
fn dos(time: i64) -> (u16, u16) {
    let t = time.clamp(315_532_800, 4_354_819_198);
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    let time = ((secs / 3600) << 11) | (((secs / 60) % 60) << 5) | ((secs % 60) / 2);
    (time as u16, date as u16)
}

/// 1.0 for a stored entry, 2.0 for deflate or a data descriptor, 4.5 with zip64.
fn version_needed(method: Method, descriptor: bool, zip64: bool) -> u16 {
    if zip64 {
        45
    } else if method == Method::Deflated || descriptor {
        20
    } else {
        10
    }
}

/// Bit 11 (names are UTF-8) only when the name is not plain ASCII.
fn name_flags(name: &str) -> u16 {
    if name.is_ascii() { 0 } else { FLAG_UTF8 }
}

/// A 32-bit field's value: the real one, or 0xFFFFFFFF when it is in the
/// zip64 extra field.
fn clamp32(v: u64, in_zip64: bool) -> u32 {
    if in_zip64 { u32::MAX } else { v as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    const FILE: u32 = 0o100644;
    /// 2023-11-14T22:13:20Z.
    const T: i64 = 1_700_000_000;

    fn deflated(data: &[u8]) -> Vec<u8> {
        super::super::parallel::deflate(&[], data, true, flate2::Compression::new(6))
    }

    /// A zip with a whole stored entry, a whole deflated one, a symlink and
    /// a streamed deflated one in two pieces.
    fn sample(limit: Option<u64>) -> Vec<u8> {
        let out = Cursor::new(Vec::new());
        let mut z = match limit {
            Some(l) => ZipStream::with_zip64_limit(out, l),
            None => ZipStream::new(out),
        };
        z.whole("appspec.yml", FILE, T, Method::Stored, crc32fast::hash(b"version: 0.0\n"), 13, b"version: 0.0\n").unwrap();
        let text = b"hello hello hello hello hello\n".repeat(100);
        z.whole(
            "site/h\u{e9}llo.txt",
            0o100755,
            T,
            Method::Deflated,
            crc32fast::hash(&text),
            text.len() as u64,
            &deflated(&text),
        )
        .unwrap();
        z.whole(
            "site/current",
            0o120777,
            T,
            Method::Stored,
            crc32fast::hash("h\u{e9}llo.txt".as_bytes()),
            10,
            "h\u{e9}llo.txt".as_bytes(),
        )
        .unwrap();
        let big = b"0123456789abcdef".repeat(10_000);
        let s = z.begin("site/big.bin", FILE, T + 1, Method::Deflated, big.len() as u64).unwrap();
        let packed = deflated(&big);
        let (a, b) = packed.split_at(packed.len() / 2);
        z.data(a).unwrap();
        z.data(b).unwrap();
        z.end(s, crc32fast::hash(&big), big.len() as u64).unwrap();
        z.finish().unwrap().into_inner()
    }

    fn check(bytes: &[u8]) {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 4);
        let mut read = |name: &str| {
            let mut e = zip.by_name(name).unwrap();
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            (out, e.unix_mode().unwrap())
        };
        assert_eq!(read("appspec.yml"), (b"version: 0.0\n".to_vec(), FILE));
        assert_eq!(read("site/h\u{e9}llo.txt").1, 0o100755);
        assert_eq!(read("site/current").1 & 0o170000, 0o120000);
        assert_eq!(read("site/big.bin").0, b"0123456789abcdef".repeat(10_000));
    }

    #[test]
    fn entries_whole_and_streamed_read_back_with_their_modes() {
        check(&sample(None));
    }

    #[test]
    fn times_are_written_as_utc_dos_fields_and_an_extended_timestamp() {
        assert_eq!(dos(T), ((22 << 11) | (13 << 5) | 10, ((2023 - 1980) << 9) | (11 << 5) | 14));
        assert_eq!(dos(0), (0, (1 << 5) | 1), "before 1980: the earliest DOS date");
        assert_eq!(dos(951_782_400).1, ((2000 - 1980) << 9) | (2 << 5) | 29, "2000-02-29, a leap day");
        let bytes = sample(None);
        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        for name in ["appspec.yml", "site/big.bin"] {
            let t = zip.by_name(name).unwrap().last_modified().unwrap();
            assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()), (2023, 11, 14, 22, 13, 20), "{name}");
        }
        let ut = [&UT.to_le_bytes()[..], &[5, 0, 1], &(T as u32).to_le_bytes()].concat();
        // Each entry's local and central header carry it.
        assert_eq!(bytes.windows(ut.len()).filter(|w| *w == &ut[..]).count(), 2 * 3);
    }

    #[test]
    fn zip64_records_read_back_when_every_value_needs_them() {
        let bytes = sample(Some(100));
        check(&bytes);
        assert!(bytes.windows(4).any(|w| w == 0x0606_4b50u32.to_le_bytes()), "a zip64 end record");
    }

    #[test]
    fn the_same_entries_give_the_same_bytes() {
        assert_eq!(sample(None), sample(None));
    }

    #[test]
    fn unzip_tests_every_entry_plain_and_zip64() {
        let unzip = which("unzip").expect("unzip is needed (Debian package unzip; scripts/test installs it)");
        let dir = tempfile::tempdir().unwrap();
        for (name, limit) in [("plain.zip", None), ("zip64.zip", Some(100))] {
            let path = dir.path().join(name);
            std::fs::write(&path, sample(limit)).unwrap();
            let out = std::process::Command::new(&unzip).arg("-t").arg(&path).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{name}: {text}{}", String::from_utf8_lossy(&out.stderr));
            assert!(text.contains("No errors detected"), "{name}: {text}");
        }
    }

    fn which(tool: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.is_file()))
    }
}
