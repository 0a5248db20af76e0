//! `Store`: the local image store, an OCI Image Layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) that standard tools (skopeo, oras, crane) can read.
//!
//! Blobs are content-addressed and immutable: every write streams to a temp file, is checked
//! against the expected size and sha256, fsynced, then renamed under its digest — a wrong or
//! partial blob never appears under a digest. Tags live in `index.json` (one manifest
//! descriptor per reference, named by the `org.opencontainers.image.ref.name` annotation),
//! rewritten atomically under an exclusive lock so concurrent commands do not lose each other.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, Sha256Digest};
use sha2::{Digest as _, Sha256};
pub(crate) use wasmbox_engine::cache::hex;
use wasmbox_engine::fs::write_atomic;
use wasmbox_engine::mapped::CodeBytes;

use crate::error::ImageError;
use crate::media::{self, REF_NAME};

const LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A tagged image: its reference and manifest descriptor.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub reference: String,
    pub manifest: Descriptor,
}

/// Parses `sha256:<64 lowercase hex>`; anything else is refused before it can name a file.
pub fn parse_digest(s: &str) -> Result<Sha256Digest, ImageError> {
    let bad = |reason: String| ImageError::BadDigest { digest: s.to_string(), reason };
    let digest: oci_spec::image::Digest = s.parse().map_err(|e: oci_spec::OciSpecError| bad(e.to_string()))?;
    if *digest.algorithm() != oci_spec::image::DigestAlgorithm::Sha256 {
        return Err(bad(format!("algorithm {} is not supported (only sha256)", digest.algorithm())));
    }
    digest.digest().parse::<Sha256Digest>().map_err(|e| bad(e.to_string()))
}

/// `sha256:<hex>` (oci-spec's `Sha256Digest` displays the bare hex).
pub fn full(digest: &Sha256Digest) -> String {
    format!("sha256:{}", digest.digest())
}

/// The sha256 digest of `descriptor`, refusing other algorithms (we store only sha256 blobs).
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Sha256Digest, ImageError> {
    parse_digest(descriptor.digest().as_ref())
}

impl Store {
    /// Opens the layout at `root`, creating it if absent.
    pub fn open(root: &Path) -> Result<Store, ImageError> {
        let blobs = root.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(ImageError::io("create", &blobs))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, LAYOUT.as_bytes()).map_err(ImageError::io("write", &layout))?;
        }
        let store = Store { root: root.to_path_buf() };
        let index = root.join("index.json");
        if !index.exists() {
            // Under the lock and checked again: a concurrent first command may have created
            // it (and tagged an image) since the check above; an empty index must not replace it.
            let _lock = store.lock()?;
            if !index.exists() {
                let empty = ImageIndex::default().to_string().expect("serialize empty index");
                write_atomic(&index, empty.as_bytes()).map_err(ImageError::io("write", &index))?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.digest())
    }

    pub fn has_blob(&self, digest: &Sha256Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes`, returning their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Sha256Digest, ImageError> {
        let digest = parse_digest(&format!("sha256:{}", hex(&Sha256::digest(bytes))))?;
        self.put_stream(bytes, &digest, bytes.len() as u64)?;
        Ok(digest)
    }

    /// Streams `reader` into the store as `digest`, which must be exactly `size` bytes.
    /// Reading stops one byte past `size`, so an endless or oversized stream is cut off there.
    pub fn put_stream(&self, reader: impl Read, digest: &Sha256Digest, size: u64) -> Result<(), ImageError> {
        let Some(mut writer) = self.begin_blob(digest, size)? else { return Ok(()) };
        let mut limited = reader.take(size + 1);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = limited.read(&mut buf).map_err(ImageError::io("read blob for", self.blob_path(digest)))?;
            if n == 0 {
                return writer.finish();
            }
            writer.write(&buf[..n])?;
        }
    }

    /// Starts writing blob `digest` of `size` bytes; `None` if the store already has it.
    pub fn begin_blob(&self, digest: &Sha256Digest, size: u64) -> Result<Option<BlobWriter>, ImageError> {
        let path = self.blob_path(digest);
        if path.is_file() {
            return Ok(None);
        }
        let dir = path.parent().unwrap().to_path_buf();
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir).map_err(ImageError::io("create", &dir))?;
        Ok(Some(BlobWriter { digest: digest.clone(), size, path, tmp, hasher: Sha256::new(), written: 0 }))
    }

    /// Opens a stored blob; a missing one is `MissingBlob`.
    fn open_blob(&self, digest: &Sha256Digest) -> Result<(File, PathBuf), ImageError> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(f) => Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ImageError::MissingBlob(full(digest))),
            Err(e) => Err(ImageError::io("open", &path)(e)),
        }
    }

    /// Reads a blob (at most `cap` bytes) and re-checks its digest, so on-disk damage is caught.
    pub fn read_blob(&self, digest: &Sha256Digest, cap: u64) -> Result<Vec<u8>, ImageError> {
        let (file, path) = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        file.take(cap + 1).read_to_end(&mut bytes).map_err(ImageError::io("read", &path))?;
        if bytes.len() as u64 > cap {
            return Err(ImageError::TooLarge { digest: full(digest), cap });
        }
        let actual = hex(&Sha256::digest(&bytes));
        if actual != digest.digest() {
            return Err(ImageError::DigestMismatch { expected: full(digest), actual });
        }
        Ok(bytes)
    }

    /// [`Store::read_blob`] for native code: the blob is mapped, not read (its digest is
    /// checked through the mapping), so code loaded from it shares the page cache's pages
    /// instead of being copied twice. Blobs are only ever replaced by rename, never rewritten
    /// in place, which a mapping needs.
    pub fn map_blob(&self, digest: &Sha256Digest, cap: u64) -> Result<CodeBytes, ImageError> {
        let (file, path) = self.open_blob(digest)?;
        let len = file.metadata().map_err(ImageError::io("stat", &path))?.len();
        if len > cap {
            return Err(ImageError::TooLarge { digest: full(digest), cap });
        }
        let bytes = CodeBytes::map(file, len).map_err(ImageError::io("map", &path))?;
        let actual = hex(&Sha256::digest(&bytes[..]));
        if actual != digest.digest() {
            return Err(ImageError::DigestMismatch { expected: full(digest), actual });
        }
        Ok(bytes)
    }

    /// Every tagged image, in index order.
    pub fn list(&self) -> Result<Vec<Tagged>, ImageError> {
        Ok(self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| {
                let name = d.annotations().as_ref()?.get(REF_NAME)?;
                Some(Tagged { reference: name.clone(), manifest: d.clone() })
            })
            .collect())
    }

    /// The manifest descriptor tagged `reference` (a normalized `Reference::whole()`).
    pub fn resolve(&self, reference: &str) -> Result<Option<Descriptor>, ImageError> {
        Ok(self.list()?.into_iter().find(|t| t.reference == reference).map(|t| t.manifest))
    }

    /// A descriptor for the manifest stored as `digest` (tagged or not), if it is in the store
    /// and parses as a manifest: pinned references (`name@sha256:…`) run by content.
    pub fn manifest_by_digest(&self, digest: &str) -> Result<Option<Descriptor>, ImageError> {
        let digest = parse_digest(digest)?;
        if !self.has_blob(&digest) {
            return Ok(None);
        }
        let bytes = self.read_blob(&digest, media::MAX_MANIFEST)?;
        crate::unpack::parse_manifest(&bytes, None)?;
        Ok(Some(manifest_descriptor(&digest, bytes.len())))
    }

    /// Bytes an image occupies: its config plus layers, as its manifest declares them.
    pub fn image_size(&self, manifest: &Descriptor) -> Result<u64, ImageError> {
        let bytes = self.read_blob(&descriptor_digest(manifest)?, media::MAX_MANIFEST)?;
        let m = crate::unpack::parse_manifest(&bytes, None)?;
        Ok(m.config().size() + m.layers().iter().map(|l| l.size()).sum::<u64>())
    }

    /// Points `reference` at `manifest` (replacing an older target).
    pub fn tag(&self, reference: &str, manifest: &Descriptor) -> Result<(), ImageError> {
        self.edit_index(|index| {
            let mut manifests: Vec<Descriptor> =
                index.manifests().iter().filter(|d| ref_name(d) != Some(reference)).cloned().collect();
            let mut tagged = manifest.clone();
            let mut annotations = tagged.annotations().clone().unwrap_or_default();
            annotations.insert(REF_NAME.to_string(), reference.to_string());
            tagged.set_annotations(Some(annotations));
            manifests.push(tagged);
            index.set_manifests(manifests);
            true
        })
    }

    /// Removes the tag `reference`; false if there was none. Blobs stay until `prune`.
    pub fn untag(&self, reference: &str) -> Result<bool, ImageError> {
        let mut found = false;
        self.edit_index(|index| {
            let before = index.manifests().len();
            let kept: Vec<Descriptor> =
                index.manifests().iter().filter(|d| ref_name(d) != Some(reference)).cloned().collect();
            found = kept.len() != before;
            index.set_manifests(kept);
            found
        })?;
        Ok(found)
    }

    /// Deletes blobs no tagged manifest references (and stale temp files); returns the bytes freed.
    pub fn prune(&self) -> Result<(usize, u64), ImageError> {
        let lock = self.lock()?;
        let mut live: BTreeSet<String> = BTreeSet::new();
        for d in self.read_index()?.manifests() {
            live.insert(d.digest().digest().to_string());
            if let Ok(digest) = descriptor_digest(d)
                && let Ok(bytes) = self.read_blob(&digest, media::MAX_MANIFEST)
                && let Ok(manifest) = ImageManifest::from_reader(&bytes[..])
            {
                live.insert(manifest.config().digest().digest().to_string());
                live.extend(manifest.layers().iter().map(|l| l.digest().digest().to_string()));
            }
        }
        let dir = self.root.join("blobs/sha256");
        let (mut count, mut bytes) = (0, 0);
        for entry in std::fs::read_dir(&dir).map_err(ImageError::io("list", &dir))? {
            let entry = entry.map_err(ImageError::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(entry.path()).map_err(ImageError::io("remove", entry.path()))?;
                count += 1;
            }
        }
        drop(lock);
        Ok((count, bytes))
    }

    fn read_index(&self) -> Result<ImageIndex, ImageError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(ImageError::io("read", &path))?;
        ImageIndex::from_reader(&bytes[..])
            .map_err(|e| ImageError::Malformed { what: "store index.json", reason: e.to_string() })
    }

    /// Read-modify-write of index.json under the store lock; `edit` returns whether to write.
    fn edit_index(&self, edit: impl FnOnce(&mut ImageIndex) -> bool) -> Result<(), ImageError> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        if edit(&mut index) {
            let path = self.root.join("index.json");
            let text =
                index.to_string_pretty().map_err(|e| ImageError::Malformed { what: "index", reason: e.to_string() })?;
            write_atomic(&path, text.as_bytes()).map_err(ImageError::io("write", &path))?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<File, ImageError> {
        let path = self.root.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ImageError::io("open", &path))?;
        file.lock().map_err(ImageError::io("lock", &path))?;
        Ok(file)
    }
}

/// A blob being written: fed chunk by chunk (from a file or a network stream), it lands under
/// its digest only in [`BlobWriter::finish`], after size and sha256 match. Dropping it (an
/// error, a cancelled pull) deletes the temp file.
pub struct BlobWriter {
    digest: Sha256Digest,
    size: u64,
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
}

impl BlobWriter {
    /// Appends `chunk`; fails as soon as the blob would exceed its declared size.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        self.written += chunk.len() as u64;
        if self.written > self.size {
            return Err(ImageError::SizeMismatch {
                digest: full(&self.digest),
                expected: self.size,
                actual: self.written,
            });
        }
        self.hasher.update(chunk);
        self.tmp.write_all(chunk).map_err(ImageError::io("write", self.tmp.path()))
    }

    pub fn finish(self) -> Result<(), ImageError> {
        let digest = full(&self.digest);
        if self.written != self.size {
            return Err(ImageError::SizeMismatch { digest, expected: self.size, actual: self.written });
        }
        let actual = hex(&self.hasher.finalize());
        if actual != self.digest.digest() {
            return Err(ImageError::DigestMismatch { expected: digest, actual });
        }
        self.tmp.as_file().sync_all().map_err(ImageError::io("sync", self.tmp.path()))?;
        let path = self.path;
        self.tmp.persist(&path).map_err(|e| ImageError::io("store", &path)(e.error))?;
        let dir = path.parent().unwrap();
        File::open(dir).and_then(|d| d.sync_all()).map_err(ImageError::io("sync", dir))
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

/// A manifest descriptor for `bytes` stored as `digest`.
pub fn manifest_descriptor(digest: &Sha256Digest, size: usize) -> Descriptor {
    Descriptor::new(MediaType::ImageManifest, size as u64, digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(bytes: &[u8]) -> Sha256Digest {
        parse_digest(&format!("sha256:{}", hex(&Sha256::digest(bytes)))).unwrap()
    }

    fn files(store: &Store) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn layout_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("oci-layout")).unwrap(), LAYOUT);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn bad_digests_are_refused_before_touching_the_filesystem() {
        // SECURITY-CASES D23.
        for bad in [
            "sha256:../../x",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}", "a".repeat(63)),
            &format!("sha512:{}", "a".repeat(128)),
            &format!("md5:{}", "a".repeat(32)),
            "sha256:",
            "nonsense",
        ] {
            assert!(parse_digest(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn altered_short_and_long_blobs_never_land() {
        // SECURITY-CASES D22, D24.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = b"real layer bytes";
        let digest = digest_of(good);
        let e = store.put_stream(&b"evil layer bytes"[..], &digest, good.len() as u64).unwrap_err();
        assert!(matches!(e, ImageError::DigestMismatch { .. }), "{e}");
        let e = store.put_stream(&good[..5], &digest, good.len() as u64).unwrap_err();
        assert!(matches!(e, ImageError::SizeMismatch { .. }), "{e}");
        // An endless stream is cut one byte past the declared size.
        let e = store.put_stream(std::io::repeat(7), &digest, good.len() as u64).unwrap_err();
        assert!(matches!(e, ImageError::SizeMismatch { actual, .. } if actual == good.len() as u64 + 1), "{e}");
        assert!(files(&store).is_empty(), "something landed: {:?}", files(&store));
        store.put_stream(&good[..], &digest, good.len() as u64).unwrap();
        assert_eq!(files(&store), [digest.digest().to_string()]);
        assert_eq!(store.read_blob(&digest, 100).unwrap(), good);
        assert!(matches!(store.read_blob(&digest, 4), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn damaged_blob_is_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.put_bytes(b"content").unwrap();
        std::fs::write(store.blob_path(&digest), b"CONTENT").unwrap();
        assert!(matches!(store.read_blob(&digest, 100), Err(ImageError::DigestMismatch { .. })));
        assert!(matches!(store.map_blob(&digest, 100), Err(ImageError::DigestMismatch { .. })));
        let good = store.put_bytes(b"code").unwrap();
        let mapped = store.map_blob(&good, 100).unwrap();
        assert!(mapped.file().is_some());
        assert_eq!(&mapped[..], b"code");
        assert!(matches!(store.map_blob(&good, 3), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn tags_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let orphan = store.put_bytes(b"orphan").unwrap();
        let m = store.put_bytes(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#).unwrap();
        let d = manifest_descriptor(&m, 10);
        store.tag("docker.io/library/a:1", &d).unwrap();
        store.tag("docker.io/library/a:2", &d).unwrap();
        store.tag("docker.io/library/a:1", &d).unwrap();
        let refs: Vec<_> = store.list().unwrap().into_iter().map(|t| t.reference).collect();
        assert_eq!(refs, ["docker.io/library/a:2", "docker.io/library/a:1"]);
        assert!(store.untag("docker.io/library/a:2").unwrap());
        assert!(!store.untag("docker.io/library/a:2").unwrap());
        let (count, _) = store.prune().unwrap();
        assert_eq!(count, 1, "only the orphan goes");
        assert!(!store.has_blob(&orphan) && store.has_blob(&m));
        store.untag("docker.io/library/a:1").unwrap();
        store.prune().unwrap();
        assert!(files(&store).is_empty());
    }
}
