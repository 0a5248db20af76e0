//! `claim`: which shim on this node precompiles a layer for one containerd.
//!
//! A non-blocking `flock` on `/run/containerd/wasmbox/precompile/<key>.lock`, the key a digest of
//! containerd's address, the namespace and the layer digest (several containerds may share a
//! node). runwasi stores the result after `compile` returns, so the lock is held a while longer
//! (`HOLD`) by one thread per `compile` call; it also goes when the shim process ends.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Long enough for runwasi to store what `compile` returned and label the image with it.
const HOLD: Duration = Duration::from_secs(60);

/// Where the lock files live: beside youki's state of this shim (`/run/containerd/wasmbox`).
const DIR: &str = "/run/containerd/wasmbox/precompile";

/// The claim on `digest`, or `None` when another shim holds it. A lock that cannot be taken for
/// another reason (no `/run`) claims anyway: compiling twice is only slower.
pub fn layer(digest: &str) -> Option<Claim> {
    let path = lock_path(digest);
    let file = std::fs::create_dir_all(DIR).and_then(|_| File::create(&path));
    let Ok(file) = file else {
        return Some(Claim(None));
    };
    match file.try_lock() {
        Ok(()) => Some(Claim(Some(file))),
        Err(std::fs::TryLockError::WouldBlock) => {
            log::info!("layer {digest} is being precompiled by another shim; this start compiles it in memory");
            None
        }
        Err(std::fs::TryLockError::Error(e)) => {
            log::warn!("cannot lock {}: {e}", path.display());
            Some(Claim(None))
        }
    }
}

/// A layer this shim compiles; pass it to `hold` once compiling is done.
pub struct Claim(Option<File>);

/// Keeps the claims of one `compile` call `HOLD` longer, on one thread whatever their number
/// (an image may have many layers).
pub fn hold(claims: Vec<Claim>) {
    if claims.iter().any(|c| c.0.is_some()) {
        std::thread::spawn(move || {
            std::thread::sleep(HOLD);
            drop(claims);
        });
    }
}

fn lock_path(digest: &str) -> PathBuf {
    let (address, namespace) = containerd_of_this_shim();
    let key = Sha256::digest(format!("{address}\0{namespace}\0{digest}").as_bytes());
    let hex: String = key.iter().take(16).map(|b| format!("{b:02x}")).collect();
    PathBuf::from(DIR).join(format!("{hex}.lock"))
}

/// containerd starts every shim with `-namespace NS -address SOCKET`.
fn containerd_of_this_shim() -> (String, String) {
    let args: Vec<String> = std::env::args().collect();
    let flag =
        |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_default();
    (flag("-address"), flag("-namespace"))
}
