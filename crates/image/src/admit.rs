//! The trust check every path from an image to a container makes (`pull`, `run`, `run -d`,
//! `serve`, the daemon at each start): the policy at `policy_path` against the signatures kept
//! for the manifest, offline. A policy that cannot be read fails closed.

use std::path::Path;

use oci_client::Reference;
use wasmbox_trust::policy::Decision;
use wasmbox_trust::{Evidence, Policy, Verified};

use crate::display_reference;
use crate::error::ImageError;
use crate::store::Store;

/// The repository as policy scopes and cosign payloads spell it (`registry/path`), and the tag.
pub fn identity(reference: &Reference) -> (String, Option<String>) {
    (format!("{}/{}", reference.registry(), reference.repository()), reference.tag().map(str::to_string))
}

/// The policy at `path`, if any.
pub fn load_policy(path: &Path) -> Result<Option<Policy>, ImageError> {
    Policy::load(path).map_err(|e| ImageError::Policy(e.to_string()))
}

/// Whether `policy` wants signatures for `reference` (so a pull fetches them).
pub fn needs_signatures(policy: &Policy, reference: &Reference) -> bool {
    let (repository, tag) = identity(reference);
    let (_, reqs) = policy.scope_for(&repository, tag.as_deref());
    reqs.iter().any(|r| matches!(r, wasmbox_trust::policy::Requirement::Sigstore { .. }))
}

/// Decides about `reference` (manifest `digest`) with `evidence`: the keys that vouched, or
/// [`ImageError::Refused`] naming the reference, digest, policy scope and what was missing.
pub fn decide(
    policy: &Policy,
    reference: &Reference,
    digest: &str,
    evidence: &[Evidence],
) -> Result<Vec<Verified>, ImageError> {
    let (repository, tag) = identity(reference);
    match policy.decide(&repository, tag.as_deref(), digest, evidence) {
        Decision::Accepted { verified, .. } => Ok(verified),
        Decision::Refused { scope, why } => Err(ImageError::Refused {
            reference: display_reference(reference),
            digest: digest.to_string(),
            scope,
            policy: policy.path.display().to_string(),
            why,
        }),
    }
}

/// Re-checks a stored image against the policy at `policy_path` (none: accepted, no keys).
pub fn admit_stored(
    store: &Store,
    policy_path: &Path,
    reference: &Reference,
    digest: &str,
) -> Result<Vec<Verified>, ImageError> {
    let Some(policy) = load_policy(policy_path)? else { return Ok(Vec::new()) };
    let evidence = store.evidence(digest)?;
    decide(&policy, reference, digest, &evidence)
}
