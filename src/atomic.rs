//! Atomic file writes: a reader never sees a half-written file, and a failed
//! write never destroys the previous version.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder that is
/// flushed to disk and then renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomically`], for content written as it is made (a long
/// render): `fill` writes through a buffer into the temporary file, which
/// replaces `path` only if `fill` succeeds; on failure `path` is untouched
/// and the temporary file is removed.
pub fn write_atomically_with<E: From<std::io::Error>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<(), E>,
) -> Result<(), E> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".cadenza-").suffix(".partial");
    // A temp file is private (0600); the result should look like any file the
    // user writes: keep the old file's mode, or rw-r--r-- for a new one.
    let permissions = match std::fs::metadata(path) {
        Ok(existing) => Some(existing.permissions()),
        Err(_) => default_permissions(),
    };
    if let Some(permissions) = permissions {
        builder.permissions(permissions);
    }
    let mut file = builder.tempfile_in(folder)?;
    {
        let mut writer = BufWriter::new(file.as_file_mut());
        fill(&mut writer)?;
        writer.flush()?;
    }
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt as _;
    Some(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::write_atomically;

    #[test]
    fn new_files_are_readable_by_others_and_rewrites_keep_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("song.mid");
        write_atomically(&path, b"one").unwrap();
        let mode = |p| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
    }
}
