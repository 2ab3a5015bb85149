//! outfile: the files ferry writes where the user says (a bundle's `--out`,
//! `--receipt`, `--junit`).
//!
//! Data layer. Each is written to a temporary file beside its target and
//! renamed over it, so nobody ever reads half a file. A rename replaces
//! whatever is at the path, so only a regular file (or nothing) may be
//! there: a FIFO, a device node, a socket, a directory or a symlink is
//! refused by [`check`] before anything is written, instead of being
//! silently replaced by a file (`--out /dev/full` as root used to replace
//! the device node).

use std::io;
use std::path::{Path, PathBuf};

/// Why a path cannot take ferry's output: a sentence with the fix.
pub type Refusal = String;

/// The directory a file at `path` is written in (`.` for a bare name).
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `path` may be replaced by a regular file ferry writes: nothing
/// there yet (in an existing directory), or a regular file.
pub fn check(path: &Path) -> Result<(), Refusal> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let ty = meta.file_type();
            if ty.is_file() {
                return Ok(());
            }
            let what = describe(&ty);
            let fix = if ty.is_dir() {
                "Name a file in it instead."
            } else if ty.is_symlink() {
                "ferry replaces the file at the path (it would replace the link, not write through it); name the file itself."
            } else {
                "ferry writes regular files only, by renaming a finished file over the path, which would replace it; name a file."
            };
            Err(format!("it is {what}. {fix}"))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = dir_of(path);
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(format!("{} is not a directory.", dir.display())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
                    "its directory {} does not exist. Create it first, or name a file in an existing one.",
                    dir.display()
                )),
                Err(e) => Err(format!("its directory {} cannot be read: {e}.", dir.display())),
            }
        }
        Err(e) => Err(format!("it cannot be read: {e}.")),
    }
}

/// [`check`], and that a file can really be created beside `path` (a
/// read-only directory or file system is found now, not after the work).
pub fn check_writable(path: &Path) -> Result<(), Refusal> {
    check(path)?;
    let dir = dir_of(path);
    tempfile::Builder::new()
        .prefix(".ferry-probe-")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| format!("no file can be created in {}: {e}. Run where the directory is writable.", dir.display()))
}

/// A new temporary file beside `path`, to be renamed over it, with the mode
/// a new file gets from the umask (`rw-rw-rw-` less the umask), as `>` in a
/// shell would make it, not tempfile's private 0600.
pub fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".ferry-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir_of(path))
}

fn describe(ty: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ty.is_char_device() {
            return "a character device";
        }
        if ty.is_block_device() {
            return "a block device";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    if ty.is_dir() {
        "a directory"
    } else if ty.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nothing_or_a_regular_file_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.zip");
        assert!(check(&file).is_ok(), "nothing there yet");
        std::fs::write(&file, "old").unwrap();
        assert!(check(&file).is_ok(), "a regular file is replaced");
        assert!(check(dir.path()).unwrap_err().contains("a directory"));
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(check(&fifo).unwrap_err().contains("a FIFO"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(check(&link).unwrap_err().contains("a symlink"));
        let missing = dir.path().join("no/such/dir/out.zip");
        assert!(check(&missing).unwrap_err().contains("does not exist"));
    }
}
