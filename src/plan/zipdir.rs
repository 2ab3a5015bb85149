//! zipdir: a zip's central directory read from byte ranges, so the running
//! bundle's file list costs two or three ranged GETs, not a download: the
//! tail (end of central directory record, and zip64's locator and record
//! when the archive needs them), then the central directory itself. Local
//! bundles are read the same way.

/// Bytes at the end of a zip that always hold its end-of-central-directory
/// record (22 bytes and a comment of up to 65535), the zip64 locator before
/// it (20) and, as writers place it, the zip64 record before that (56).
pub const TAIL: u64 = 22 + 65535 + 20 + 56;

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
/// Size of a local file header before its name and extra field.
pub const LOCAL_HEADER: u64 = 30;

/// Where the central directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Directory {
    /// Offset from the start of the archive.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
    /// Entries it holds.
    pub entries: u64,
}

/// What the tail says: the directory, or (zip64) where the zip64 record is
/// when it lies before the tail that was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Located {
    /// Found.
    Directory(Directory),
    /// Read the 56 bytes at this offset and pass them to [`zip64_record`].
    Zip64RecordAt(u64),
}

/// One central directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name, as stored.
    pub name: String,
    /// CRC-32 of the uncompressed bytes.
    pub crc32: u32,
    /// Compressed bytes.
    pub compressed_size: u64,
    /// Uncompressed bytes.
    pub size: u64,
    /// 0 stored, 8 deflated.
    pub method: u16,
    /// Offset of its local header.
    pub local_offset: u64,
}

impl Entry {
    /// Whether it is a directory (a name ending in `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Finds the central directory from `tail`, the last bytes of an archive
/// that starts `tail_start` bytes before them.
pub fn locate(tail: &[u8], tail_start: u64) -> Result<Located, String> {
    // The last signature whose comment length reaches exactly the end.
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(tail, i) == Some(EOCD) && u16_at(tail, i + 20).map(|c| i + 22 + c as usize) == Some(tail.len()))
        .ok_or("no end-of-central-directory record: not a zip, or truncated")?;
    let entries = u16_at(tail, at + 10).unwrap_or(0) as u64;
    let size = u32_at(tail, at + 12).unwrap_or(0) as u64;
    let offset = u32_at(tail, at + 16).unwrap_or(0) as u64;
    let needs_zip64 = entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF;
    let locator = at.checked_sub(20).filter(|&l| u32_at(tail, l) == Some(ZIP64_LOCATOR));
    match locator {
        Some(l) => {
            let record = u64_at(tail, l + 8).ok_or("a truncated zip64 locator")?;
            if record >= tail_start {
                let i = (record - tail_start) as usize;
                return zip64_record(tail.get(i..).unwrap_or_default()).map(Located::Directory);
            }
            Ok(Located::Zip64RecordAt(record))
        }
        None if needs_zip64 => Err("the archive needs zip64 but has no zip64 locator".into()),
        None => Ok(Located::Directory(Directory { offset, size, entries })),
    }
}

/// Reads the zip64 end-of-central-directory record at the start of `b`.
pub fn zip64_record(b: &[u8]) -> Result<Directory, String> {
    if u32_at(b, 0) != Some(ZIP64_EOCD) {
        return Err("the zip64 locator points at no zip64 record".into());
    }
    let field = |at| u64_at(b, at).ok_or_else(|| "a truncated zip64 record".to_string());
    Ok(Directory { entries: field(32)?, size: field(40)?, offset: field(48)? })
}

/// The entries of a central directory read whole.
pub fn entries(cd: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 46 <= cd.len() {
        if u32_at(cd, i) != Some(CENTRAL) {
            return Err(format!("no central directory entry at byte {i} of the directory"));
        }
        let n = u16_at(cd, i + 28).unwrap_or(0) as usize;
        let e = u16_at(cd, i + 30).unwrap_or(0) as usize;
        let c = u16_at(cd, i + 32).unwrap_or(0) as usize;
        let name = cd.get(i + 46..i + 46 + n).ok_or("a truncated entry name")?;
        let extra = cd.get(i + 46 + n..i + 46 + n + e).ok_or("a truncated extra field")?;
        let mut entry = Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            crc32: u32_at(cd, i + 16).unwrap_or(0),
            compressed_size: u32_at(cd, i + 20).unwrap_or(0) as u64,
            size: u32_at(cd, i + 24).unwrap_or(0) as u64,
            method: u16_at(cd, i + 10).unwrap_or(0),
            local_offset: u32_at(cd, i + 42).unwrap_or(0) as u64,
        };
        apply_zip64_extra(&mut entry, extra);
        out.push(entry);
        i += 46 + n + e + c;
    }
    Ok(out)
}

/// Replaces the 32-bit fields that say 0xFFFFFFFF with the zip64 extra
/// field's values, which hold only those, in this order.
fn apply_zip64_extra(entry: &mut Entry, extra: &[u8]) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16_at(extra, i).unwrap_or(0);
        let len = u16_at(extra, i + 2).unwrap_or(0) as usize;
        if id == 0x0001 {
            let mut at = i + 4;
            let mut next = |v: &mut u64| {
                if *v == 0xFFFF_FFFF
                    && let Some(x) = u64_at(extra, at)
                {
                    *v = x;
                    at += 8;
                }
            };
            next(&mut entry.size);
            next(&mut entry.compressed_size);
            next(&mut entry.local_offset);
            return;
        }
        i += 4 + len;
    }
}

/// Bytes between a local header's offset and its data: the fixed header,
/// then the name and extra field whose lengths `header` (its first 30
/// bytes) gives.
pub fn data_start(header: &[u8]) -> Result<u64, String> {
    if u32_at(header, 0) != Some(LOCAL) {
        return Err("no local file header where the central directory points".into());
    }
    let n = u16_at(header, 26).ok_or("a truncated local header")? as u64;
    let e = u16_at(header, 28).ok_or("a truncated local header")? as u64;
    Ok(LOCAL_HEADER + n + e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])], comment: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, data) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.set_comment(comment);
        w.finish().unwrap().into_inner()
    }

    fn list(bytes: &[u8]) -> Vec<Entry> {
        let start = bytes.len().saturating_sub(TAIL as usize);
        let dir = match locate(&bytes[start..], start as u64).unwrap() {
            Located::Directory(d) => d,
            Located::Zip64RecordAt(at) => zip64_record(&bytes[at as usize..]).unwrap(),
        };
        let cd = &bytes[dir.offset as usize..(dir.offset + dir.size) as usize];
        let out = entries(cd).unwrap();
        assert_eq!(out.len() as u64, dir.entries);
        out
    }

    #[test]
    fn entries_carry_names_sizes_and_crcs() {
        let bytes = zip_of(&[("appspec.yml", b"version: 0.0\n"), ("site/index.html", b"<h1>hi</h1>")], "a comment");
        let got = list(&bytes);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "appspec.yml");
        assert_eq!((got[0].size, got[0].crc32), (13, crc32fast::hash(b"version: 0.0\n")));
        let start = data_start(&bytes[got[1].local_offset as usize..]).unwrap() as usize + got[1].local_offset as usize;
        assert!(start < bytes.len() && got[1].method == 8, "deflated data follows the local header");
    }

    #[test]
    fn zip64_archives_are_read_through_the_zip64_record() {
        use crate::bundle::zipstream::{Method, ZipStream};
        // ferry's own writer, told that every value needs zip64.
        let mut z = ZipStream::with_zip64_limit(std::io::Cursor::new(Vec::new()), 1);
        for (name, data) in [("a.txt", &b"aaa"[..]), ("b/c.txt", &b"cc"[..])] {
            z.whole(name, 0o100644, 0, Method::Stored, crc32fast::hash(data), data.len() as u64, data).unwrap();
        }
        let bytes = z.finish().unwrap().into_inner();
        let locator = ZIP64_LOCATOR.to_le_bytes();
        assert!(bytes.windows(4).any(|w| w == locator), "the writer made a zip64 end record");
        let got = list(&bytes);
        assert_eq!(got.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a.txt", "b/c.txt"]);
        assert_eq!((got[1].size, got[1].crc32), (2, crc32fast::hash(b"cc")));
        assert!(got[1].local_offset > 0 && got[1].local_offset < bytes.len() as u64);
    }

    #[test]
    fn something_that_is_not_a_zip_is_refused() {
        assert!(locate(b"plain text, no record here at all", 0).is_err());
    }
}
