//! Atomic file replacement: a checkpoint on disk is the old one or the new
//! one, never half of each.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a file atomically: `write` fills a temporary file in the same
/// directory, which is flushed, synced to disk and then renamed over
/// `path`. If `write` fails, or the process dies midway, `path` keeps its
/// old contents (a crash may leave the temporary file, named
/// `.<file name>.<random>.tmp`, behind).
///
/// The savers of this module all write through it.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use solstice::serial::write_atomically;
/// # fn main() -> solstice::Result<()> {
/// let dir = std::env::temp_dir().join(format!("solstice-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("notes.txt");
/// write_atomically(&path, |w| Ok(w.write_all(b"old")?))?;
/// let failed = write_atomically(&path, |w| {
///     w.write_all(b"half of the new")?;
///     Err(solstice::Error::from(std::io::Error::other("disk full")))
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read(&path).unwrap(), b"old");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
pub fn write_atomically(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let in_file = |e: Error| e.context(format!("writing {}", path.display()));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| in_file(Error::invalid("the path names no file")))?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| in_file(io("could not create a temporary file", e)))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, temp.as_file());
        write(&mut w).map_err(in_file)?;
        w.flush()
            .map_err(|e| in_file(io("could not write the temporary file", e)))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| in_file(io("could not sync the temporary file", e)))?;
    temp.persist(path).map_err(|e| {
        in_file(io(
            "could not rename the temporary file into place",
            e.error,
        ))
    })?;
    // The rename itself is durable once the directory is synced. Not every
    // platform can open a directory, so failing to is not an error.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::from(e).context(what.to_string())
}
