//! OCI Image Layouts outside the store: what `image load` and the agent's `oci_layout` sources
//! read (a directory, e.g. a mounted USB stick, or a tar as `image save`, `docker save` and
//! `skopeo copy … oci-archive:` write it). Nothing from a layout is trusted: a tar is unpacked
//! only into a private scratch directory (regular files at `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`; links, devices and other paths refused or skipped), a directory's
//! files must be regular files (no symlinks, FIFOs), every document is capped, and every blob
//! enters the store through the same size + sha256 check a pull uses. Signatures are read from
//! cosign's `sha256-<hex>.sig` manifests and from manifests whose `subject` is the image.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use oci_client::Reference;
use oci_spec::image::{Arch, Descriptor, ImageIndex};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use wasmbox_trust::evidence::{MAX_DOCUMENT, MAX_EVIDENCE};
use wasmbox_trust::{Evidence, bundle, payload};

use crate::error::ImageError;
use crate::media::{self, REF_NAME};
use crate::store::{Store, descriptor_digest, full, hex, manifest_descriptor, parse_digest};
use crate::unpack::{check_runnable, parse_manifest};

/// containerd's (and `docker save`'s) annotation with the whole image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An index.json larger than this is refused.
const MAX_INDEX: u64 = 4 << 20;

/// A layout opened for reading.
pub struct Layout {
    root: PathBuf,
    index: ImageIndex,
    /// The scratch copy of a tar, removed when the layout is dropped.
    _unpacked: Option<tempfile::TempDir>,
}

/// An image entry of a layout: its name (if it has one) and manifest descriptor.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Option<String>,
    pub manifest: Descriptor,
}

fn bad(reason: impl Into<String>) -> ImageError {
    ImageError::Malformed { what: "OCI layout", reason: reason.into() }
}

impl Layout {
    /// Opens `path`: a layout directory, or a tar holding one (unpacked under `scratch`).
    pub fn open(path: &Path, scratch: &Path) -> Result<Layout, ImageError> {
        let meta = std::fs::metadata(path).map_err(ImageError::io("open", path))?;
        let (root, unpacked) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else if meta.is_file() {
            std::fs::create_dir_all(scratch).map_err(ImageError::io("create", scratch))?;
            let dir = tempfile::Builder::new()
                .prefix("load-")
                .tempdir_in(scratch)
                .map_err(ImageError::io("create", scratch))?;
            untar(path, dir.path())?;
            (dir.path().to_path_buf(), Some(dir))
        } else {
            return Err(bad(format!("{} is neither a directory nor a tar file", path.display())));
        };
        let index_path = root.join("index.json");
        if !root.join("oci-layout").is_file() || !index_path.is_file() {
            return Err(bad(format!(
                "{} has no oci-layout/index.json (an OCI Image Layout is expected; a docker save from before \
                 Docker 25 has none: re-save with a newer docker or `skopeo copy … oci-archive:FILE`)",
                path.display()
            )));
        }
        let bytes = read_capped(&index_path, MAX_INDEX)?;
        let index = ImageIndex::from_reader(&bytes[..]).map_err(|e| bad(format!("index.json: {e}")))?;
        Ok(Layout { root, index, _unpacked: unpacked })
    }

    /// The images of the layout (signature manifests and referrers left out).
    pub fn entries(&self) -> Vec<Entry> {
        self.index
            .manifests()
            .iter()
            .filter(|d| !self.is_signature_entry(d))
            .map(|d| Entry { name: entry_name(d), manifest: d.clone() })
            .collect()
    }

    /// The entry `reference` names: by digest when pinned; else the entry whose whole name is
    /// the reference's, else one named by the reference's tag alone (skopeo's `oci:DIR:TAG`).
    pub fn find(&self, reference: &Reference) -> Option<Entry> {
        let entries = self.entries();
        if let Some(digest) = reference.digest() {
            return entries.into_iter().find(|e| e.manifest.digest().to_string() == digest);
        }
        let whole = reference.whole();
        let named = |e: &Entry| {
            e.name.as_deref().and_then(|n| crate::parse_reference(n).ok()).is_some_and(|r| r.whole() == whole)
        };
        if let Some(found) = entries.iter().find(|e| named(e)) {
            return Some(found.clone());
        }
        // A bare tag names no repository: it is used only when exactly one image carries it
        // (two apps' `stable` on one stick must not be mistaken for each other).
        let tag = reference.tag()?;
        let mut tagged = entries.into_iter().filter(|e| e.name.as_deref() == Some(tag));
        match (tagged.next(), tagged.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// Copies the image of `entry` into `store` (not tagged; the caller names it): returns the
    /// manifest descriptor in the store. Precompiled layers for other CPUs stay behind, as on
    /// a pull.
    pub fn import(&self, store: &Store, entry: &Entry) -> Result<Descriptor, ImageError> {
        let mut bytes = self.document(&entry.manifest)?;
        if is_index(&bytes) {
            let index = ImageIndex::from_reader(&bytes[..]).map_err(|e| bad(format!("image index: {e}")))?;
            let inner = index
                .manifests()
                .iter()
                .find(|m| m.platform().as_ref().is_some_and(|p| *p.architecture() == Arch::Wasm))
                .ok_or_else(|| ImageError::Unsupported("the image index has no `wasm` architecture entry".into()))?
                .clone();
            bytes = self.document(&inner)?;
        }
        let manifest = parse_manifest(&bytes, None)?;
        check_runnable(&manifest)?;
        let host_arch = wasmbox_engine::target::Target::Native.architecture();
        let wanted = std::iter::once(manifest.config())
            .chain(manifest.layers().iter().filter(|l| crate::precompiled::wanted(l, host_arch)));
        for blob in wanted {
            let digest = descriptor_digest(blob)?;
            if blob.size() > media::DEFAULT_MAX_BLOB {
                return Err(ImageError::TooLarge { digest: full(&digest), cap: media::DEFAULT_MAX_BLOB });
            }
            if store.has_blob(&digest) {
                continue;
            }
            let file = self.open_blob(&digest)?;
            store.put_stream(file.take(blob.size() + 1), &digest, blob.size())?;
        }
        let digest = store.put_bytes(&bytes)?;
        Ok(manifest_descriptor(&digest, bytes.len()))
    }

    /// The signatures the layout carries for manifest `digest`.
    pub fn evidence(&self, digest: &str) -> Result<Vec<Evidence>, ImageError> {
        let sig_tag = format!("{}.sig", digest.replacen(':', "-", 1));
        let mut out = Vec::new();
        for d in self.index.manifests() {
            let is_sig = entry_name(d).is_some_and(|n| n == sig_tag || n.ends_with(&format!(":{sig_tag}")));
            let doc = if is_sig || d.artifact_type().is_some() || d.media_type().to_string() == media::MANIFEST {
                match self.document(d) {
                    Ok(doc) => doc,
                    Err(_) if !is_sig => continue,
                    Err(e) => return Err(e),
                }
            } else {
                continue;
            };
            let manifest: Value = serde_json::from_slice(&doc).map_err(|e| bad(e.to_string()))?;
            let referrer = manifest["subject"]["digest"] == digest;
            if !is_sig && !referrer {
                continue;
            }
            let layers = manifest.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
            for layer in layers.iter().take(MAX_EVIDENCE + 1) {
                let kind = layer["mediaType"].as_str().unwrap_or_default();
                if is_sig && kind == payload::MEDIA_TYPE {
                    let Some(signature) = layer["annotations"][payload::SIGNATURE_ANNOTATION].as_str() else {
                        continue;
                    };
                    out.push(Evidence::simple(&self.small_blob(layer)?, signature));
                } else if referrer && kind == bundle::MEDIA_TYPE {
                    out.push(Evidence::bundle(&self.small_blob(layer)?));
                }
            }
            if out.len() > MAX_EVIDENCE {
                return Err(bad(format!("more than {MAX_EVIDENCE} signatures for {digest}")));
            }
        }
        Ok(out)
    }

    /// `sha256-<hex>.sig` tags and referrers are not images of their own.
    fn is_signature_entry(&self, d: &Descriptor) -> bool {
        let name = entry_name(d).unwrap_or_default();
        let tag = name.rsplit(':').next().unwrap_or_default();
        (tag.starts_with("sha256-") && tag.len() >= 71) || d.artifact_type().is_some()
    }

    /// A manifest or index: capped, its digest checked against the descriptor.
    fn document(&self, d: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let digest = descriptor_digest(d)?;
        let bytes = read_capped(&self.blob_path(&digest)?, media::MAX_MANIFEST)?;
        check_digest(&digest, &bytes)?;
        Ok(bytes)
    }

    fn small_blob(&self, layer: &Value) -> Result<Vec<u8>, ImageError> {
        let digest = parse_digest(layer["digest"].as_str().unwrap_or_default())?;
        let bytes = read_capped(&self.blob_path(&digest)?, MAX_DOCUMENT)?;
        check_digest(&digest, &bytes)?;
        Ok(bytes)
    }

    fn blob_path(&self, digest: &oci_spec::image::Sha256Digest) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("blobs/sha256").join(digest.digest()))
    }

    fn open_blob(&self, digest: &oci_spec::image::Sha256Digest) -> Result<File, ImageError> {
        let path = self.blob_path(digest)?;
        regular_file(&path)?;
        File::open(&path).map_err(ImageError::io("open", &path))
    }
}

fn entry_name(d: &Descriptor) -> Option<String> {
    let annotations = d.annotations().as_ref()?;
    annotations.get(CONTAINERD_NAME).or_else(|| annotations.get(REF_NAME)).cloned()
}

fn is_index(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v.get("manifests").is_some() && v.get("layers").is_none())
}

fn check_digest(digest: &oci_spec::image::Sha256Digest, bytes: &[u8]) -> Result<(), ImageError> {
    let actual = hex(&Sha256::digest(bytes));
    if actual != digest.digest() {
        return Err(ImageError::DigestMismatch { expected: full(digest), actual });
    }
    Ok(())
}

/// Refuses anything but a regular file (a symlink, FIFO or device on a stick).
fn regular_file(path: &Path) -> Result<(), ImageError> {
    let meta = std::fs::symlink_metadata(path).map_err(ImageError::io("read", path))?;
    if !meta.file_type().is_file() {
        return Err(bad(format!("{} is not a regular file", path.display())));
    }
    Ok(())
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ImageError> {
    regular_file(path)?;
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(ImageError::io("open", path))?
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ImageError::io("read", path))?;
    if bytes.len() as u64 > cap {
        return Err(bad(format!("{} is larger than {cap} bytes", path.display())));
    }
    Ok(bytes)
}

/// The layout files of a tar, written into `dest`. Links and special files are refused; paths
/// that are not part of an OCI layout (docker's manifest.json, legacy layer directories) are
/// skipped; each file is capped at the blob limit.
fn untar(path: &Path, dest: &Path) -> Result<(), ImageError> {
    let file = File::open(path).map_err(ImageError::io("open", path))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries().map_err(|e| bad(format!("{}: {e}", path.display())))?;
    std::fs::create_dir_all(dest.join("blobs/sha256")).map_err(ImageError::io("create", dest))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let name = entry.path().map_err(|e| bad(format!("{}: {e}", path.display())))?.into_owned();
        let parts: Vec<String> = name
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| match c {
                Component::Normal(s) => Ok(s.to_string_lossy().into_owned()),
                _ => Err(bad(format!("{}: entry `{}` leaves the archive", path.display(), name.display()))),
            })
            .collect::<Result<_, _>>()?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!("{}: entry `{}` is a link or special file", path.display(), name.display())));
        }
        let keep = match parts.as_slice() {
            [f] if f == "oci-layout" || f == "index.json" => true,
            [b, s, h] if b == "blobs" && s == "sha256" => h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()),
            _ => false,
        };
        if !keep {
            continue;
        }
        if entry.size() > media::DEFAULT_MAX_BLOB {
            return Err(ImageError::TooLarge { digest: parts.join("/"), cap: media::DEFAULT_MAX_BLOB });
        }
        let target = dest.join(parts.join("/"));
        let mut out = File::create(&target).map_err(ImageError::io("write", &target))?;
        std::io::copy(&mut (&mut entry).take(media::DEFAULT_MAX_BLOB), &mut out)
            .map_err(ImageError::io("write", &target))?;
    }
    Ok(())
}

/// One image to save: its name and manifest digest in the store.
pub struct Saved {
    pub name: String,
    pub manifest: Descriptor,
}

/// Writes `images` from `store` (with the signatures kept for them) as an OCI layout: into
/// `out` when it is an existing directory (merged with the layout already there, so one stick
/// can hold many images), else as a tar file at `out` (written whole, then renamed).
pub fn save(store: &Store, images: &[Saved], out: &Path) -> Result<(), ImageError> {
    let (root, temp) = if out.is_dir() {
        (out.to_path_buf(), None)
    } else {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir =
            tempfile::Builder::new().prefix(".save-").tempdir_in(parent).map_err(ImageError::io("create", parent))?;
        (dir.path().to_path_buf(), Some(dir))
    };
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(ImageError::io("create", &blobs))?;
    let index_path = root.join("index.json");
    let mut index: Vec<Value> = match std::fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
            .ok_or_else(|| bad(format!("{} is not an image index", index_path.display())))?,
        Err(_) => Vec::new(),
    };
    let copy = |digest: &oci_spec::image::Sha256Digest| -> Result<(), ImageError> {
        let target = blobs.join(digest.digest());
        if !target.is_file() {
            let from = store.blob_path(digest);
            std::fs::copy(&from, &target).map_err(ImageError::io("copy", &from))?;
        }
        Ok(())
    };
    let write = |bytes: &[u8]| -> Result<String, ImageError> {
        let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
        let target = blobs.join(&digest[7..]);
        std::fs::write(&target, bytes).map_err(ImageError::io("write", &target))?;
        Ok(digest)
    };
    for image in images {
        let digest = descriptor_digest(&image.manifest)?;
        let bytes = store.read_blob(&digest, media::MAX_MANIFEST)?;
        let manifest = parse_manifest(&bytes, None)?;
        copy(&digest)?;
        for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
            let d = descriptor_digest(blob)?;
            // Precompiled layers for other CPUs were never pulled here: the layout lacks them too.
            if store.has_blob(&d) {
                copy(&d)?;
            }
        }
        let media_type =
            manifest.media_type().as_ref().map(|m| m.to_string()).unwrap_or_else(|| media::MANIFEST.into());
        index.retain(|e| e["annotations"][REF_NAME] != image.name.as_str());
        index.push(serde_json::json!({
            "mediaType": media_type, "digest": full(&digest), "size": bytes.len(),
            "annotations": { REF_NAME: image.name, CONTAINERD_NAME: image.name },
        }));
        let evidence = store.evidence(&full(&digest))?;
        let repository = image.name.rsplit_once('@').map_or(image.name.as_str(), |(r, _)| r);
        let repository = match repository.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r,
            _ => repository,
        };
        let mut sig_layers = Vec::new();
        for e in &evidence {
            match e {
                Evidence::SimpleSigning { payload: p, signature } => {
                    let payload_bytes = base64_decode(p)?;
                    let d = write(&payload_bytes)?;
                    sig_layers.push(serde_json::json!({
                        "mediaType": payload::MEDIA_TYPE, "size": payload_bytes.len(), "digest": d,
                        "annotations": { payload::SIGNATURE_ANNOTATION: signature },
                    }));
                }
                Evidence::Bundle { bundle: b } => {
                    let doc = base64_decode(b)?;
                    let layer_digest = write(&doc)?;
                    let empty = write(b"{}")?;
                    let referrer = serde_json::to_vec(&serde_json::json!({
                        "schemaVersion": 2, "mediaType": media::MANIFEST, "artifactType": bundle::MEDIA_TYPE,
                        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": empty },
                        "layers": [{ "mediaType": bundle::MEDIA_TYPE, "size": doc.len(), "digest": layer_digest }],
                        "subject": { "mediaType": media_type, "size": bytes.len(), "digest": full(&digest) },
                    }))
                    .map_err(|e| bad(e.to_string()))?;
                    let rd = write(&referrer)?;
                    index.retain(|x| x["digest"] != rd.as_str());
                    index.push(serde_json::json!({
                        "mediaType": media::MANIFEST, "digest": rd, "size": referrer.len(),
                        "artifactType": bundle::MEDIA_TYPE,
                    }));
                }
            }
        }
        if !sig_layers.is_empty() {
            let (config, sig_manifest) = crate::signatures::sig_manifest(&sig_layers)?;
            write(&config)?;
            let md = write(&sig_manifest)?;
            let name = format!("{repository}:{}.sig", full(&digest).replacen(':', "-", 1));
            index.retain(|x| x["annotations"][REF_NAME] != name.as_str());
            index.push(serde_json::json!({
                "mediaType": media::MANIFEST, "digest": md, "size": sig_manifest.len(),
                "annotations": { REF_NAME: name },
            }));
        }
    }
    let doc = serde_json::json!({ "schemaVersion": 2, "mediaType": media::INDEX, "manifests": index });
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| bad(e.to_string()))?;
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(ImageError::io("write", root.join("oci-layout")))?;
    wasmbox_engine::fs::write_atomic(&index_path, &text).map_err(ImageError::io("write", &index_path))?;
    if let Some(dir) = temp {
        // Beside the layout in the temp dir (only the layout's own paths go into the tar), so
        // a failed save leaves nothing behind.
        let tmp_tar = dir.path().join("out.tar");
        let file = File::create(&tmp_tar).map_err(ImageError::io("create", &tmp_tar))?;
        let mut tar = tar::Builder::new(file);
        tar.mode(tar::HeaderMode::Deterministic);
        for name in ["oci-layout", "index.json"] {
            tar.append_path_with_name(root.join(name), name).map_err(ImageError::io("write", &tmp_tar))?;
        }
        let mut names: Vec<_> = std::fs::read_dir(&blobs)
            .map_err(ImageError::io("list", &blobs))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let inside = format!("blobs/sha256/{}", n.to_string_lossy());
            tar.append_path_with_name(blobs.join(&n), &inside).map_err(ImageError::io("write", &tmp_tar))?;
        }
        let file = tar.into_inner().map_err(ImageError::io("write", &tmp_tar))?;
        file.sync_all().map_err(ImageError::io("write", &tmp_tar))?;
        std::fs::rename(&tmp_tar, out).map_err(ImageError::io("write", out))?;
    }
    Ok(())
}

fn base64_decode(text: &str) -> Result<Vec<u8>, ImageError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| bad(format!("stored signature: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if kind.is_symlink() {
                h.set_link_name("/etc/passwd").unwrap();
            }
            // set_path refuses `..`; write the raw name as a hostile archive would.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn open_tar(bytes: Vec<u8>) -> Result<Layout, ImageError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        std::fs::write(&path, bytes).unwrap();
        // The scratch copy must outlive `dir` (the tar's directory): the layout cleans it up.
        Layout::open(&path, &std::env::temp_dir().join("wasmbox-layout-tests"))
    }

    #[test]
    fn hostile_tars_are_refused_before_anything_is_written_outside() {
        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let escape =
            tar_of(&[("oci-layout", tar::EntryType::Regular, layout), ("../evil", tar::EntryType::Regular, b"x")]);
        assert!(open_tar(escape).err().unwrap().to_string().contains("leaves the archive"));
        let link = tar_of(&[("index.json", tar::EntryType::Symlink, b"")]);
        assert!(open_tar(link).err().unwrap().to_string().contains("link or special file"));
        let legacy = tar_of(&[("manifest.json", tar::EntryType::Regular, b"[]")]);
        assert!(open_tar(legacy).err().unwrap().to_string().contains("no oci-layout/index.json"));
    }

    /// `docker save` (Docker 25+): an OCI layout whose index names the image with containerd's
    /// whole-name annotation and the tag alone in `ref.name`, beside docker's own manifest.json.
    #[test]
    fn a_docker_save_archive_is_read_by_its_whole_name() {
        let config = br#"{"architecture":"wasm","os":"wasip1"}"#;
        let wasm = b"\0asm\x01\0\0\0";
        let hash = |b: &[u8]| hex(&Sha256::digest(b));
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::MANIFEST,
            "config": {"mediaType": "application/vnd.wasm.config.v0+json", "size": config.len(), "digest": format!("sha256:{}", hash(config))},
            "layers": [{"mediaType": "application/wasm", "size": wasm.len(), "digest": format!("sha256:{}", hash(wasm))}],
        })
        .to_string();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": media::MANIFEST, "size": manifest.len(), "digest": format!("sha256:{}", hash(manifest.as_bytes())),
            "annotations": {CONTAINERD_NAME: "docker.io/library/app:1", REF_NAME: "1"},
        }]})
        .to_string();
        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let (c, w, m) = (
            format!("blobs/sha256/{}", hash(config)),
            format!("blobs/sha256/{}", hash(wasm)),
            format!("blobs/sha256/{}", hash(manifest.as_bytes())),
        );
        let tar = tar_of(&[
            ("oci-layout", tar::EntryType::Regular, layout),
            ("index.json", tar::EntryType::Regular, index.as_bytes()),
            ("manifest.json", tar::EntryType::Regular, b"[]"),
            ("repositories", tar::EntryType::Regular, b"{}"),
            (&c, tar::EntryType::Regular, config),
            (&w, tar::EntryType::Regular, wasm),
            (&m, tar::EntryType::Regular, manifest.as_bytes()),
        ]);
        let opened = open_tar(tar).unwrap();
        let entries = opened.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name.as_deref(), Some("docker.io/library/app:1"));
        let found = opened.find(&crate::parse_reference("app:1").unwrap()).expect("found by its whole name");
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let imported = opened.import(&store, &found).unwrap();
        assert_eq!(imported.digest().to_string(), format!("sha256:{}", hash(manifest.as_bytes())));
        assert!(opened.evidence(imported.digest().as_ref()).unwrap().is_empty());
    }

    #[test]
    fn a_bare_tag_names_an_image_only_when_one_image_has_it() {
        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let entry = |n: u8| {
            serde_json::json!({"mediaType": media::MANIFEST, "size": 2, "digest": format!("sha256:{}", format!("{n:x}").repeat(64)),
                "annotations": {REF_NAME: "stable"}})
        };
        let one = serde_json::json!({"schemaVersion": 2, "manifests": [entry(1)]}).to_string();
        let two = serde_json::json!({"schemaVersion": 2, "manifests": [entry(1), entry(2)]}).to_string();
        let stable = crate::parse_reference("registry.local:5000/edge/sensor:stable").unwrap();
        for (index, found) in [(one, true), (two, false)] {
            let tar = tar_of(&[
                ("oci-layout", tar::EntryType::Regular, layout),
                ("index.json", tar::EntryType::Regular, index.as_bytes()),
            ]);
            assert_eq!(open_tar(tar).unwrap().find(&stable).is_some(), found);
        }
    }

    #[test]
    fn an_empty_layout_has_no_entries() {
        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let index: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;
        let ok = tar_of(&[
            ("./oci-layout", tar::EntryType::Regular, layout),
            ("index.json", tar::EntryType::Regular, index),
        ]);
        assert!(open_tar(ok).unwrap().entries().is_empty());
    }
}
