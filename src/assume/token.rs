//! Reading the web identity token file: a regular file, read without ever
//! blocking (a FIFO there would hang ferry past `--timeout` and SIGTERM)
//! and with a size bound, its problems named as the file's (not as a trust
//! policy's), and an empty token refused here rather than sent to STS.

use std::io::{self, Read};
use std::path::Path;

/// STS accepts a `WebIdentityToken` of at most 20,000 characters; a file
/// far bigger is not a token (and is not read whole).
pub const MAX_BYTES: u64 = 64 * 1024;

/// The token in `path`, trimmed; an error that says what is wrong with the
/// file.
pub fn read(path: &Path) -> io::Result<String> {
    let bad = |kind: io::ErrorKind, what: &str| io::Error::new(kind, what.to_string());
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => bad(e.kind(), "it does not exist (was the credential bound for this step?)"),
        _ => e,
    })?;
    if meta.is_dir() {
        return Err(bad(io::ErrorKind::InvalidInput, "it is a directory, not the token file in it"));
    }
    if !meta.is_file() {
        return Err(bad(
            io::ErrorKind::InvalidInput,
            "it is not a regular file (a FIFO, socket or device?); ferry reads the token from a file",
        ));
    }
    if meta.len() > MAX_BYTES {
        return Err(bad(
            io::ErrorKind::InvalidData,
            &format!("it is {} bytes; a web identity token is at most 20,000 characters, so this is not one", meta.len()),
        ));
    }
    let file = crate::small_file::open_nonblocking(path)?;
    // Swapped for something else since the check above: refuse that too.
    if !file.metadata()?.is_file() {
        return Err(bad(io::ErrorKind::InvalidInput, "it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(bad(
            io::ErrorKind::InvalidData,
            "it grew past 64 KiB while being read; a token is at most 20,000 characters",
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| bad(io::ErrorKind::InvalidData, "it is not UTF-8 text, so it holds no token"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad(io::ErrorKind::InvalidData, "it is empty (the token was not written yet, or was removed)"));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &Path) -> String {
        read(path).unwrap_err().to_string()
    }

    #[test]
    fn a_token_file_is_read_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "eyJhbGciOi.x.y\n").unwrap();
        assert_eq!(read(&p).unwrap(), "eyJhbGciOi.x.y");
    }

    /// Issue 23 items 7 and 11: each file problem is named as such, and
    /// none blocks (a FIFO with no writer would, if opened plainly).
    #[cfg(unix)]
    #[test]
    fn a_fifo_a_directory_a_missing_an_empty_a_binary_and_a_huge_file_are_each_named() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(err(&fifo).contains("not a regular file"), "{}", err(&fifo));
        assert!(err(dir.path()).contains("is a directory"));
        assert!(err(&dir.path().join("nope")).contains("does not exist"));
        let p = dir.path().join("token");
        std::fs::write(&p, " \n").unwrap();
        assert!(err(&p).contains("is empty"));
        std::fs::write(&p, [0xff, 0xfe, b'a']).unwrap();
        assert!(err(&p).contains("not UTF-8"));
        std::fs::write(&p, vec![b'a'; 20 << 20]).unwrap();
        assert!(err(&p).contains("20971520 bytes"), "{}", err(&p));
    }
}
