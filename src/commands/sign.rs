//! `wasmbox sign --key K REF`: signs the manifest digest REF resolves to (never the tag) and
//! adds the signature to the registry the way cosign does (`sha256-<hex>.sig`).

use clap::Args;
use wasmbox_image::{display_reference, parse_reference};

/// Sign an image in its registry (cosign-compatible)
#[derive(Args, Debug)]
pub struct SignArgs {
    /// Private key file (cosign format)
    #[arg(long, value_name = "KEY")]
    pub key: String,

    /// Read the key's password from the first line of stdin
    #[arg(long)]
    pub password_stdin: bool,

    /// Use plain HTTP for a registry off this machine
    #[arg(long)]
    pub insecure: bool,

    #[arg(value_name = "REF")]
    pub reference: String,
}

pub fn exec(a: SignArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&a.reference)?;
    let key = super::key::load_private(&a.key, a.password_stdin)?;
    let registry = super::registry_client(&reference, a.insecure)?;
    let resolved = super::block_on(registry.resolve(&reference))??;
    let (repository, _) = wasmbox_image::admit::identity(&reference);
    let payload = wasmbox_trust::payload::encode(&repository, &resolved.digest);
    let signature = key.sign(&payload);
    super::block_on(registry.push_signature(&reference, &resolved.digest, &payload, &signature))??;
    println!("signed {} ({})", display_reference(&reference), resolved.digest);
    Ok(0)
}
