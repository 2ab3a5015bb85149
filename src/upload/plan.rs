//! How a bundle is cut into parts, and the checksums S3 keeps for it.
//!
//! ferry's multipart uploads carry S3's full-object CRC-64/NVME (see
//! [`super::multipart`]). Earlier ferrys uploaded with SHA-256, for which S3
//! stores a COMPOSITE checksum: `base64(sha256(digest(part 1) ‖ … ‖
//! digest(part N)))-N`. The composite is still computed here, from the local
//! file, only to recognise such an object as this bundle and not upload it
//! again.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

/// S3's largest part count.
pub const MAX_PARTS: u64 = 10_000;
/// The smallest part ferry uses (S3's minimum is 5 MiB).
pub const MIN_PART: u64 = 8 << 20;
/// Bundles at least this big go multipart; smaller ones are one PUT.
pub const MULTIPART_THRESHOLD: u64 = 16 << 20;

/// Part layout of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Object size.
    pub size: u64,
    /// Size of every part but the last.
    pub part_size: u64,
    /// Number of parts.
    pub parts: u32,
}

impl Plan {
    /// Parts of at least [`MIN_PART`], grown in whole MiB so that no object
    /// up to S3's 5 TiB limit needs more than [`MAX_PARTS`].
    pub fn for_size(size: u64) -> Plan {
        let needed = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
        let part_size = needed.max(MIN_PART);
        let parts = size.div_ceil(part_size).max(1) as u32;
        Plan { size, part_size, parts }
    }

    /// Byte offset and length of part `n` (1-based).
    pub fn range(&self, n: u32) -> (u64, u64) {
        let offset = (n as u64 - 1) * self.part_size;
        (offset, self.part_size.min(self.size - offset))
    }
}

/// Base64 of a digest, as S3's checksum headers carry it.
pub fn b64(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The composite checksum S3 reports for these part digests, without the
/// `-N` suffix.
pub fn composite(part_digests: &[[u8; 32]]) -> String {
    let mut h = Sha256::new();
    for d in part_digests {
        h.update(d);
    }
    b64(&h.finalize())
}

/// Whether S3's reported checksum `found` is the composite `expected` of
/// `parts` parts. S3 appends `-N`; some local servers leave it off.
pub fn matches_composite(found: &str, expected: &str, parts: u32) -> bool {
    match found.rsplit_once('-') {
        Some((base, n)) => base == expected && n.parse::<u32>() == Ok(parts),
        None => found == expected,
    }
}

/// Reads `path` once and returns the part digests for `plan`: what the
/// composite of an object uploaded with that plan must be.
pub fn part_digests(path: &Path, plan: &Plan) -> std::io::Result<Vec<[u8; 32]>> {
    let mut f = File::open(path)?;
    let mut buf = crate::bundle::sums::aligned(crate::bundle::sums::PIECE);
    let mut out = Vec::with_capacity(plan.parts as usize);
    for n in 1..=plan.parts {
        let (_, mut left) = plan.range(n);
        let mut h = Sha256::new();
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..want])?;
            h.update(&buf[..want]);
            left -= want as u64;
        }
        out.push(h.finalize().into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_use_the_minimum_part_size() {
        let p = Plan::for_size(50 << 20);
        assert_eq!((p.part_size, p.parts), (MIN_PART, 7));
        assert_eq!(p.range(7), (6 * MIN_PART, 2 << 20));
    }

    #[test]
    fn part_size_grows_so_ten_thousand_parts_are_never_exceeded() {
        for size in [80_000u64 << 20, 1 << 40, 5 << 40, (5 << 40) - 1, 83_886_080_001] {
            let p = Plan::for_size(size);
            assert!(p.parts as u64 <= MAX_PARTS, "{size}: {p:?}");
            assert_eq!(p.part_size % (1 << 20), 0);
            let (off, len) = p.range(p.parts);
            assert_eq!(off + len, size, "the last part ends at the end");
        }
    }

    #[test]
    fn composite_is_the_hash_of_the_concatenated_part_digests() {
        let a: [u8; 32] = Sha256::digest(b"a").into();
        let b: [u8; 32] = Sha256::digest(b"b").into();
        let mut cat = a.to_vec();
        cat.extend_from_slice(&b);
        assert_eq!(composite(&[a, b]), b64(&Sha256::digest(&cat)));
    }

    #[test]
    fn composite_read_back_must_match_value_and_part_count() {
        assert!(matches_composite("abc=-3", "abc=", 3));
        assert!(matches_composite("abc=", "abc=", 3));
        assert!(!matches_composite("abc=-2", "abc=", 3));
        assert!(!matches_composite("abd=-3", "abc=", 3));
    }
}
