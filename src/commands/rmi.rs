//! `wasmbox rmi`: remove image tags from the local store (`image prune` frees the blobs).

use clap::Args;
use wasmbox_image::{ImageError, display_reference, parse_reference};

/// Remove one or more local images (their tags; unreferenced blobs go with `image prune`)
#[derive(Args, Debug)]
pub struct RmiArgs {
    #[arg(value_name = "REF", required = true)]
    pub references: Vec<String>,
}

pub fn exec(a: RmiArgs) -> anyhow::Result<i32> {
    let store = super::image_store()?;
    // Check every name first, so a typo removes nothing.
    let mut refs = Vec::new();
    for r in &a.references {
        let r = parse_reference(r)?;
        if store.resolve(&r.whole())?.is_none() {
            return Err(ImageError::NotFound(display_reference(&r)).into());
        }
        refs.push(r);
    }
    for r in refs {
        store.untag(&r.whole())?;
        println!("untagged: {}", display_reference(&r));
    }
    Ok(0)
}
