//! Deterministic runs in the CLI (`run --deterministic`): refusing what cannot be
//! deterministic, and the receipt — what went in and what came out, as digests, nothing host-,
//! engine- or time-specific and no host paths, so receipts from different CPUs compare equal.
//! `--check-receipt FILE` runs again and compares.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use wasmbox_engine::determinism::Determinism;
use wasmbox_engine::{Artifact, Capabilities, Limits, Output, RunStats, Stdin};

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
    /// sha256 of each granted directory tree as the run began (`tree_digest`), by guest path.
    #[serde(default)]
    pub dirs: BTreeMap<String, String>,
    pub stdin_sha256: String,
    pub stdout_sha256: String,
    pub stderr_sha256: String,
    pub exit_code: i32,
    pub fuel_used: u64,
}

impl Receipt {
    /// Writes the receipt to `write`, and/or compares it with the one in `check` (exit 0 when
    /// equal, 1 listing each difference); without `check`, the guest's exit code.
    pub fn settle(&self, write: Option<&Path>, check: Option<&Path>) -> anyhow::Result<i32> {
        if let Some(path) = write {
            let text = serde_json::to_string_pretty(self)? + "\n";
            std::fs::write(path, text).with_context(|| format!("failed to write the receipt {}", path.display()))?;
        }
        let Some(path) = check else { return Ok(self.exit_code) };
        let text = std::fs::read(path).with_context(|| format!("failed to read the receipt {}", path.display()))?;
        let expected: Receipt =
            serde_json::from_slice(&text).with_context(|| format!("{} is not a wasmbox receipt", path.display()))?;
        let differences = self.differences(&expected);
        if differences.is_empty() {
            eprintln!("receipt {} matches", path.display());
            return Ok(0);
        }
        eprintln!("receipt {} does not match:", path.display());
        for d in differences {
            eprintln!("  {d}");
        }
        Ok(1)
    }

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

/// argv[0] of a deterministic run.
pub const PROGRAM_NAME: &str = "program";

/// What a deterministic run records while it runs.
pub struct Recorder {
    seed: u64,
    dirs: BTreeMap<String, String>,
    stdin_sha256: String,
    output: Arc<HashingOutput>,
}

impl Recorder {
    /// Refuses what cannot be deterministic, then makes `caps`/`limits` deterministic: fixed
    /// clocks and seeded random data, stdin read up front, output hashed, fuel counted.
    pub fn prepare(caps: &mut Capabilities, limits: &mut Limits, seed: u64) -> anyhow::Result<Recorder> {
        refuse_nondeterministic(caps, limits)?;
        let mut dirs = BTreeMap::new();
        for p in &caps.preopens {
            let digest = crate::tree_digest::tree_digest(&p.host)
                .with_context(|| format!("--dir {}: failed to read the tree for the receipt", p.host.display()))?;
            dirs.insert(p.guest.clone(), digest);
        }
        caps.deterministic = Some(Determinism { seed });
        // The program name is the source as typed, a host path that differs between machines
        // (and between a .wasm and its precompiled file); the guest sees a fixed one.
        if let Some(name) = caps.args.first_mut() {
            *name = PROGRAM_NAME.to_string();
        }
        let mut input = Vec::new();
        std::io::stdin().lock().read_to_end(&mut input).context("failed to read stdin")?;
        let stdin_sha256 = sha256_hex(&input);
        caps.stdin = Stdin::Bytes(input);
        let output = Arc::new(HashingOutput::default());
        caps.output = Output::Sink(output.clone());
        // Fuel use is part of the receipt; without --fuel it is counted, not limited.
        limits.fuel = Some(limits.fuel.unwrap_or(u64::MAX / 2));
        Ok(Recorder { seed, dirs, stdin_sha256, output })
    }

    pub fn receipt(&self, artifact: &Artifact, caps: &Capabilities, exit_code: i32, stats: &RunStats) -> Receipt {
        let (stdout_sha256, stderr_sha256) = self.output.digests();
        let wasm_sha256 = match artifact.wasm() {
            Some(wasm) => sha256_hex(wasm),
            None => artifact.bound_wasm_sha256().map(|s| wasmbox_engine::cache::hex(&s)).unwrap_or_default(),
        };
        Receipt {
            wasm_sha256,
            // argv[0] is always PROGRAM_NAME.
            args: caps.args.iter().skip(1).cloned().collect(),
            env: caps.env.clone(),
            seed: self.seed,
            dirs: self.dirs.clone(),
            stdin_sha256: self.stdin_sha256.clone(),
            stdout_sha256,
            stderr_sha256,
            exit_code,
            fuel_used: stats.fuel_used.load(Ordering::Relaxed),
        }
    }
}

/// What `--deterministic` cannot make deterministic is refused, naming the flag.
fn refuse_nondeterministic(caps: &Capabilities, limits: &Limits) -> anyhow::Result<()> {
    if !caps.net.is_empty() {
        bail!("--deterministic cannot grant --net-allow: the network is host state");
    }
    if let Some(t) = limits.timeout {
        bail!(
            "--deterministic cannot use a time limit ({t:?}, from --timeout or the image): where it \
             stops a run depends on the machine; bound it with --fuel"
        );
    }
    Ok(())
}
