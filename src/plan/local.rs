//! local: the new bundle's files (path → size and CRC-32) and its appspec,
//! read from the archive on disk: a zip by its central directory, a tar or
//! tgz entry by entry (CRC-32 computed, as tar records none).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::zipdir::{self, Entry, Located};
use crate::appspec;
use crate::config::BundleType;

/// A bundle's files and appspec.
#[derive(Debug, Default)]
pub struct Listing {
    /// Path → (size, CRC-32); directories left out.
    pub files: BTreeMap<String, (u64, u32)>,
    /// `appspec.yml`'s text, when the bundle holds one.
    pub appspec: Option<String>,
}

/// A bundle path as CodeDeploy unpacks it: no leading `./` or `/`.
pub fn normalize(name: &str) -> String {
    name.trim_start_matches("./").trim_start_matches('/').to_string()
}

/// The files of a zip's central directory.
pub fn files_of(entries: &[Entry]) -> BTreeMap<String, (u64, u32)> {
    entries.iter().filter(|e| !e.is_dir()).map(|e| (normalize(&e.name), (e.size, e.crc32))).collect()
}

/// The entry that is the appspec.
pub fn appspec_entry(entries: &[Entry]) -> Option<&Entry> {
    entries.iter().find(|e| normalize(&e.name) == appspec::FILE_NAME)
}

/// Uncompressed bytes of a stored (0) or deflated (8) entry.
pub fn inflate(method: u16, data: &[u8], size: u64) -> Result<Vec<u8>, String> {
    match method {
        0 => Ok(data.to_vec()),
        8 => {
            let mut out = Vec::with_capacity(size as usize);
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out).map_err(|e| format!("cannot inflate: {e}"))?;
            Ok(out)
        }
        m => Err(format!("compression method {m}, which ferry does not read")),
    }
}

/// Lists the bundle at `path`.
pub fn list(path: &Path, kind: BundleType) -> Result<Listing, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match kind {
        BundleType::Zip => list_zip(&mut file),
        BundleType::Tar | BundleType::Tgz => list_tar(file, kind),
    }
}

fn span(file: &mut File, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut buf = vec![0; len as usize];
    file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut buf)).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn list_zip(file: &mut File) -> Result<Listing, String> {
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let tail_start = size.saturating_sub(zipdir::TAIL);
    let tail = span(file, tail_start, size - tail_start)?;
    let dir = match zipdir::locate(&tail, tail_start)? {
        Located::Directory(d) => d,
        Located::Zip64RecordAt(at) => zipdir::zip64_record(&span(file, at, 56)?)?,
    };
    let entries = zipdir::entries(&span(file, dir.offset, dir.size)?)?;
    let appspec = match appspec_entry(&entries) {
        Some(e) => {
            let header = span(file, e.local_offset, zipdir::LOCAL_HEADER)?;
            let data = span(file, e.local_offset + zipdir::data_start(&header)?, e.compressed_size)?;
            Some(String::from_utf8_lossy(&inflate(e.method, &data, e.size)?).into_owned())
        }
        None => None,
    };
    Ok(Listing { files: files_of(&entries), appspec })
}

fn list_tar(file: File, kind: BundleType) -> Result<Listing, String> {
    let reader: Box<dyn Read> =
        if kind == BundleType::Tgz { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut archive = tar::Archive::new(reader);
    let mut listing = Listing::default();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = normalize(&entry.path().map_err(|e| e.to_string())?.to_string_lossy());
        let kind = entry.header().entry_type();
        // A zip stores a symlink's target as its content: the same here,
        // so a tgz and a zip of one tree compare equal.
        let bytes = if kind.is_symlink() {
            entry.link_name_bytes().map(|b| b.into_owned()).unwrap_or_default()
        } else if kind.is_file() {
            let mut b = Vec::new();
            entry.read_to_end(&mut b).map_err(|e| e.to_string())?;
            b
        } else {
            continue;
        };
        if name == appspec::FILE_NAME {
            listing.appspec = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        listing.files.insert(name, (bytes.len() as u64, crc32fast::hash(&bytes)));
    }
    Ok(listing)
}
