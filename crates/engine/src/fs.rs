//! `write_atomic`: the one way wasmbox writes state files — all or nothing, durable once it
//! returns; `write_replace` for files whose every reader verifies them (the compile cache).

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory: write, fsync,
/// rename over `path`, fsync the directory. Readers see the old file or the new one, never a
/// part; concurrent writers of the same path each leave a complete file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // tempfile creates 0600 files; a written file should get the usual 0644 less the umask.
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with an explicit mode (less the umask), e.g. 0600 for credentials: the
/// file never exists with looser permissions, not even as the temp file.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` through a temporary file and a rename, without syncing: readers see
/// the old file or the new one, never a part, but after a power loss the file may be torn or
/// empty. Only for files that are checked when read (compile-cache entries carry a checksum and
/// a binding, so a torn entry is recompiled): an fsync of tens of MiB of code costs a first
/// start hundreds of milliseconds.
pub fn write_replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        super::write_atomic(&p, b"first version").unwrap();
        super::write_atomic(&p, b"2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp file left behind");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600, "owner can read and write");
        assert_eq!(mode & 0o133, 0, "no execute bits, no group/other write");
    }
}
