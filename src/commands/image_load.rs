//! `wasmbox image load -i FILE|DIR`: every named image of an OCI Image Layout (what `image
//! save`, `docker save` (Docker 25+) and `skopeo copy … oci-archive:` write) into the local
//! store, blobs checked like a pull's, with the signatures it carries kept for the offline
//! policy check every start makes. Loading verifies nothing else: `run` and the agent do.

use std::path::PathBuf;

use clap::Args;
use wasmbox_image::layout::Layout;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// An OCI layout tar file or directory
    #[arg(short, long, value_name = "FILE|DIR")]
    pub input: PathBuf,
}

pub fn exec(a: LoadArgs) -> anyhow::Result<i32> {
    let store = super::image_store()?;
    let layout = Layout::open(&a.input, &crate::home::wasmbox_home()?.join("tmp"))?;
    let entries = layout.entries();
    if entries.is_empty() {
        anyhow::bail!("{} holds no images", a.input.display());
    }
    for entry in entries {
        let descriptor = layout.import(&store, &entry)?;
        let digest = descriptor.digest().to_string();
        let evidence = layout.evidence(entry.manifest.digest().as_ref())?;
        if !evidence.is_empty() {
            store.put_evidence(&digest, &evidence)?;
        }
        // A bare tag (skopeo's `oci:DIR:TAG`) names no repository: such an image is loaded
        // by digest only, as docker does with unnamed images.
        match entry.name.as_deref().filter(|n| n.contains('/')).map(wasmbox_image::parse_reference) {
            Some(Ok(reference)) => {
                store.tag(&reference.whole(), &descriptor)?;
                println!("Loaded image: {} ({digest})", wasmbox_image::display_reference(&reference));
            }
            _ => println!("Loaded image ID: {digest}"),
        }
    }
    Ok(0)
}
