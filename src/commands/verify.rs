//! `wasmbox verify --key K.pub REF`: which keys signed the digest REF resolves to, checked
//! the way `cosign verify --key … --insecure-ignore-tlog` does (the repository named in a
//! signature is not compared here; under a policy it is).

use clap::Args;
use wasmbox_image::{display_reference, parse_reference};

/// Verify an image's signatures in its registry (exit 0 if one verifies, 1 if none)
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Public key file (PEM); repeat for several (any of them may verify)
    #[arg(long, value_name = "KEY", required = true)]
    pub key: Vec<String>,

    /// Use plain HTTP for a registry off this machine
    #[arg(long)]
    pub insecure: bool,

    #[arg(value_name = "REF")]
    pub reference: String,
}

pub fn exec(a: VerifyArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&a.reference)?;
    let keys = a.key.iter().map(|k| super::key::load_public(k)).collect::<anyhow::Result<Vec<_>>>()?;
    let registry = super::registry_client(&reference, a.insecure)?;
    let resolved = super::block_on(registry.resolve(&reference))??;
    let evidence = super::block_on(registry.fetch_evidence(&reference, &resolved.digest))??;
    let (verified, why) = wasmbox_trust::evidence::verify(&evidence, &keys, &resolved.digest, None);
    let name = display_reference(&reference);
    if verified.is_empty() {
        let seen = if evidence.is_empty() { "it has no signatures".to_string() } else { why.join("; ") };
        eprintln!("error: no signature of {name} ({}) verifies with the given keys: {seen}", resolved.digest);
        return Ok(1);
    }
    for v in verified {
        println!("Verified {name} ({}) with {} ({})", v.digest, v.key, v.kind);
    }
    Ok(0)
}
