//! Commands whose product is a document (`ferry policy`, `ferry env`,
//! `ferry credential-process`) write it here: stdout, exactly as given,
//! whatever `--output` says, because another program reads it.

use std::io::Write;

/// Writes `text` to stdout and flushes. The caller decides whether stdout
/// may receive it (e.g. `ferry env` refuses a terminal).
pub fn write_product(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
