//! `wasmbox push`: upload a local image to its registry.

use clap::Args;
use wasmbox_image::{ImageError, display_reference, parse_reference};

use super::pull::RegistryArgs;
use crate::progress::Reporter;

/// Push a local image to the registry its name points at
#[derive(Args, Debug)]
pub struct PushArgs {
    /// A local image whose name includes the registry (e.g. localhost:5000/team/app:1.0)
    #[arg(value_name = "REF")]
    pub reference: String,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn exec(a: PushArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&a.reference)?;
    let store = super::image_store()?;
    let manifest =
        store.resolve(&reference.whole())?.ok_or_else(|| ImageError::NotFound(display_reference(&reference)))?;
    let registry = super::registry_client(&reference, a.registry.insecure)?;
    let reporter = Reporter::new(a.registry.quiet);
    reporter.say(&format!("pushing {}", display_reference(&reference)));
    let digest = super::block_on(registry.push(&store, &manifest, &reference, &reporter))??;
    reporter.say(&format!("pushed {}", display_reference(&reference)));
    println!("{digest}");
    Ok(0)
}
