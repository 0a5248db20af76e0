//! `wasmbox pull`: fetch an image from a registry into the local store.

use clap::Args;
use wasmbox_image::{display_reference, parse_reference};

use crate::progress::Reporter;

/// Pull an image from a registry
#[derive(Args, Debug)]
pub struct PullArgs {
    /// NAME[:TAG] or NAME@sha256:DIGEST (e.g. localhost:5000/team/app:1.0)
    #[arg(value_name = "REF")]
    pub reference: String,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Flags shared by commands that talk to a registry.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Allow plain HTTP for a registry that is not on this machine (loopback always may)
    #[arg(long)]
    pub insecure: bool,

    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Refuse to pull any blob larger than this [default: 1G]
    #[arg(long, value_name = "SIZE", value_parser = wasmbox_engine::units::parse_size)]
    pub max_blob_size: Option<u64>,
}

pub fn exec(a: PullArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&a.reference)?;
    let digest = pull(&reference, &a.registry)?;
    println!("{digest}");
    Ok(0)
}

/// Pulls `reference` into the local store; returns the manifest digest.
pub fn pull(reference: &oci_spec::distribution::Reference, flags: &RegistryArgs) -> anyhow::Result<String> {
    let store = super::image_store()?;
    let mut registry = super::registry_client(reference, flags.insecure)?;
    if let Some(cap) = flags.max_blob_size {
        registry = registry.with_max_blob(cap);
    }
    let name = display_reference(reference);
    let reporter = Reporter::new(flags.quiet);
    reporter.say(&format!("pulling {name}"));
    // Under a policy that wants signatures, they are fetched and checked before any layer
    // moves, and kept next to the image for the offline re-check at every start.
    let policy = crate::trust::load_policy()?;
    let resolved = super::block_on(registry.resolve(reference))??;
    let digest = resolved.digest.clone();
    let mut evidence = None;
    if let Some(policy) = &policy {
        let found = if wasmbox_image::admit::needs_signatures(policy, reference) {
            super::block_on(registry.fetch_evidence(reference, &digest))??
        } else {
            Vec::new()
        };
        for v in wasmbox_image::admit::decide(policy, reference, &digest, &found)? {
            reporter.say(&format!(
                "verified {} with {} ({})",
                wasmbox_image::registry::short(&v.digest),
                v.key,
                v.kind
            ));
        }
        evidence = Some(found);
    }
    let descriptor = super::block_on(registry.pull_resolved(&store, reference, resolved, &reporter))??;
    if let Some(found) = evidence {
        store.put_evidence(&digest, &found)?;
    }
    reporter.say(&format!("pulled {name}"));
    Ok(descriptor.digest().to_string())
}
