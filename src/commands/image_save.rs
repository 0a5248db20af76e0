//! `wasmbox image save REF… -o OUT`: images from the local store, with the signatures kept for
//! them, as an OCI Image Layout — a tar (like `docker save`), or merged into an existing
//! directory (a USB stick the agent reads). A policy can check them offline after `load`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use wasmbox_image::layout::Saved;
use wasmbox_image::{ImageError, display_reference, parse_reference};

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Images to save (NAME[:TAG] or NAME@sha256:DIGEST), from the local store
    #[arg(value_name = "REF", required = true)]
    pub references: Vec<String>,

    /// Where to write: a tar file, or an existing directory to add an OCI layout to
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: PathBuf,
}

pub fn exec(a: SaveArgs) -> anyhow::Result<i32> {
    let store = super::image_store()?;
    let mut images = Vec::new();
    for text in &a.references {
        let reference = parse_reference(text)?;
        let found = match reference.digest() {
            Some(digest) => store.manifest_by_digest(digest)?,
            None => store.resolve(&reference.whole())?,
        };
        let manifest = found.ok_or_else(|| ImageError::NotFound(display_reference(&reference)))?;
        images.push(Saved { name: reference.whole(), manifest });
    }
    if a.output.as_os_str().is_empty() {
        bail!("-o needs a file or directory");
    }
    wasmbox_image::layout::save(&store, &images, &a.output)?;
    for image in &images {
        eprintln!("saved {} ({})", image.name, image.manifest.digest());
    }
    Ok(0)
}
