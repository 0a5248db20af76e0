//! The daemon's own trust check: before a container from an image starts — created, started
//! again, or restarted by its policy — the daemon reads *its* policy file and the signatures
//! kept in *its* image store, and the Wasm it is about to run must be that image's. Nothing in
//! a request can weaken this; a client can only leave `image` out, which makes the Wasm a local
//! file (outside the policy, as for `wasmbox run ./file.wasm`).

use sha2::{Digest, Sha256};
use wasmbox_image::{ImageError, Store};

use crate::error::HostError;
use crate::manager::Manager;
use crate::spec::ContainerSpec;

impl Manager {
    pub(crate) fn admit(&self, spec: &ContainerSpec) -> Result<(), HostError> {
        let Some(origin) = &spec.image else { return Ok(()) };
        let refused = |e: ImageError| {
            let hint = matches!(e, ImageError::Refused { .. })
                .then(|| format!("see what applies with `wasmbox policy {}`", origin.reference));
            HostError::NotRunnable(e.to_string(), hint)
        };
        let policy_path = self.home.join("policy.json");
        let Some(policy) = wasmbox_image::admit::load_policy(&policy_path).map_err(refused)? else { return Ok(()) };
        let reference = wasmbox_image::parse_reference(&origin.reference).map_err(refused)?;
        let store = Store::open(&self.home.join("images")).map_err(refused)?;
        let evidence = store.evidence(&origin.manifest_digest).map_err(refused)?;
        wasmbox_image::admit::decide(&policy, &reference, &origin.manifest_digest, &evidence).map_err(refused)?;
        // The signed manifest must lead to exactly this Wasm (every blob is digest-checked).
        let descriptor = store.manifest_by_digest(&origin.manifest_digest).map_err(refused)?.ok_or_else(|| {
            HostError::NotRunnable(format!("image {} is no longer in the store", origin.reference), None)
        })?;
        let image = wasmbox_image::unpack(&store, &descriptor).map_err(refused)?;
        let sha: String = Sha256::digest(&image.wasm).iter().map(|b| format!("{b:02x}")).collect();
        if sha != spec.wasm_sha256 {
            return Err(HostError::NotRunnable(
                format!("the Wasm to run is not the Wasm of {} ({})", origin.reference, origin.manifest_digest),
                None,
            ));
        }
        Ok(())
    }
}
