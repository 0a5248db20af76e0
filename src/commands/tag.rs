//! `wasmbox tag`: give a local image another name.

use clap::Args;
use wasmbox_image::{ImageError, display_reference, parse_reference};

/// Create a tag DST that refers to the local image SRC
#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SRC")]
    pub source: String,
    #[arg(value_name = "DST")]
    pub target: String,
}

pub fn exec(a: TagArgs) -> anyhow::Result<i32> {
    let store = super::image_store()?;
    let src = parse_reference(&a.source)?;
    let dst = parse_reference(&a.target)?;
    if dst.digest().is_some() {
        anyhow::bail!("cannot tag as a digest reference `{}`; use NAME[:TAG]", a.target);
    }
    let manifest = match src.digest() {
        Some(d) => store.manifest_by_digest(d)?,
        None => store.resolve(&src.whole())?,
    }
    .ok_or_else(|| ImageError::NotFound(display_reference(&src)))?;
    store.tag(&dst.whole(), &manifest)?;
    eprintln!("tagged {} as {}", display_reference(&src), display_reference(&dst));
    Ok(0)
}
