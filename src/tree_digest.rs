//! `tree_digest`: one sha256 for a directory tree — names, kinds and contents, in name order —
//! so a receipt says which input a deterministic run read without naming host paths or times.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The digest of the tree under `root`. Each entry contributes its kind, its path relative to
/// `root` (bytes) and, for a file, the sha256 of its contents; for a symbolic link, its
/// target. Entries are visited in name order (by bytes), so the host's listing order and file
/// times do not matter.
pub fn tree_digest(root: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    // Depth first with an explicit stack (a guest that could write the tree earlier may have
    // made it arbitrarily deep): children in name order, each directory right before its own.
    let mut pending: Vec<PathBuf> = sorted_children(root, Path::new(""))?;
    while let Some(path) = pending.pop() {
        let full = root.join(&path);
        let meta = std::fs::symlink_metadata(&full)?;
        let kind: &[u8] = if meta.is_dir() {
            b"d"
        } else if meta.file_type().is_symlink() {
            b"l"
        } else if meta.is_file() {
            b"f"
        } else {
            b"o"
        };
        h.update(kind);
        h.update((path.as_os_str().len() as u64).to_le_bytes());
        h.update(path.as_os_str().as_encoded_bytes());
        if meta.is_dir() {
            pending.extend(sorted_children(root, &path)?);
        } else if meta.file_type().is_symlink() {
            h.update(std::fs::read_link(&full)?.as_os_str().as_encoded_bytes());
        } else if meta.is_file() {
            h.update(file_sha256(&full)?);
        }
    }
    Ok(wasmbox_engine::cache::hex(&h.finalize()))
}

/// The entries of `root/rel` as paths relative to `root`, last name first (to be popped).
fn sorted_children(root: &Path, rel: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<_> =
        std::fs::read_dir(root.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort_by(|a, b| b.as_encoded_bytes().cmp(a.as_encoded_bytes()));
    Ok(names.into_iter().map(|n| rel.join(n)).collect())
}

fn file_sha256(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_covers_names_and_contents_not_order_or_times() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Created in opposite orders.
        for (dir, names) in [(&a, ["x", "y", "z"]), (&b, ["z", "y", "x"])] {
            std::fs::create_dir(dir.path().join("sub")).unwrap();
            for n in names {
                std::fs::write(dir.path().join("sub").join(n), n).unwrap();
            }
        }
        let da = tree_digest(a.path()).unwrap();
        assert_eq!(da, tree_digest(b.path()).unwrap());
        std::fs::write(b.path().join("sub/x"), "changed").unwrap();
        assert_ne!(da, tree_digest(b.path()).unwrap(), "contents count");
        std::fs::write(b.path().join("sub/x"), "x").unwrap();
        std::fs::rename(b.path().join("sub/y"), b.path().join("sub/w")).unwrap();
        assert_ne!(da, tree_digest(b.path()).unwrap(), "names count");
    }

    #[test]
    fn a_deep_tree_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let mut path = dir.path().to_path_buf();
        for _ in 0..1000 {
            path.push("d");
        }
        std::fs::create_dir_all(&path).unwrap();
        assert_eq!(tree_digest(dir.path()).unwrap().len(), 64);
    }
}
