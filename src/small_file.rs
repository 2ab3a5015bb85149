//! Small files ferry reads whole: `ferry.toml`, `.ferryignore`, the web
//! identity token. Each must be a regular file and is opened without
//! blocking: a FIFO at one of these paths used to hang ferry past
//! `--timeout` and SIGTERM, since a blocking `open` or `read` on the
//! runtime's thread never returns to the abort guard. And each is read
//! with a bound, so a path pointing at something huge costs no memory.

use std::io::{self, Read};
use std::path::Path;

/// The bytes of `path`, at most `max` of them. A missing file keeps its
/// `NotFound` kind, so a caller can treat "absent" as "not configured";
/// a directory, FIFO, socket or device, and a file over `max`, are errors
/// whose message says which.
pub fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    check_kind(&meta)?;
    if meta.len() > max {
        return Err(too_big(meta.len(), max));
    }
    let file = open_nonblocking(path)?;
    // Swapped for something else between the check and the open.
    check_kind(&file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// Opens `path` for reading with `O_NONBLOCK`, so opening a FIFO never
/// waits for a writer.
pub fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)
}

fn check_kind(meta: &std::fs::Metadata) -> io::Result<()> {
    if meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is a directory, not a file"));
    }
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file (a FIFO, socket or device?); ferry reads only regular files here",
        ));
    }
    Ok(())
}

fn too_big(len: u64, max: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("it is {len} bytes, more than the {max} ferry reads from such a file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "abc").unwrap();
        assert_eq!(read(&p, 3).unwrap(), b"abc");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &p, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o600), 0).unwrap();
        let e = read(&p, 1024).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_directory_a_missing_file_and_an_oversized_one_each_say_so() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), 1024).unwrap_err().to_string().contains("directory"));
        assert_eq!(read(&dir.path().join("none"), 1024).unwrap_err().kind(), io::ErrorKind::NotFound);
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'x'; 10]).unwrap();
        assert!(read(&p, 9).unwrap_err().to_string().contains("10 bytes"));
    }
}
