//! Receipts of deterministic runs (`run --deterministic --receipt FILE`): what went in and what
//! came out, as digests — nothing host-, engine- or time-specific and no host paths, so
//! receipts from different CPUs compare equal. `--check-receipt FILE` runs again and compares.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmbox_engine::{GuestOutput, OutStream};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// sha256 of the Wasm (also when it ran from precompiled code).
    pub wasm_sha256: String,
    /// The guest's arguments after the program name (which is a host path).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub seed: u64,
    pub stdin_sha256: String,
    pub stdout_sha256: String,
    pub stderr_sha256: String,
    pub exit_code: i32,
    pub fuel_used: u64,
}

impl Receipt {
    /// The fields that differ from `other`, with both values.
    pub fn differences(&self, other: &Receipt) -> Vec<String> {
        let (a, b) = (fields(self), fields(other));
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: expected {}, got {}", b.get(k).map(String::as_str).unwrap_or("-"), v))
            .collect()
    }
}

fn fields(r: &Receipt) -> BTreeMap<String, String> {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
        _ => BTreeMap::new(),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    wasmbox_engine::cache::hex(&Sha256::digest(bytes))
}

/// The guest's stdout and stderr, passed through to ours and hashed on the way.
#[derive(Default)]
pub struct HashingOutput {
    hashes: Mutex<(Sha256, Sha256)>,
}

impl HashingOutput {
    pub fn digests(&self) -> (String, String) {
        let h = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
        (wasmbox_engine::cache::hex(&h.0.clone().finalize()), wasmbox_engine::cache::hex(&h.1.clone().finalize()))
    }
}

impl GuestOutput for HashingOutput {
    fn write(&self, stream: OutStream, bytes: &[u8]) {
        let mut h = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
        match stream {
            OutStream::Stdout => {
                h.0.update(bytes);
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            OutStream::Stderr => {
                h.1.update(bytes);
                let _ = std::io::stderr().lock().write_all(bytes);
            }
        }
    }
}
