//! Which CPU compiled code is for: this machine (`Native`, with the CPU features wasmtime
//! detects on it), another architecture (cross-compiled for its baseline features), or Pulley,
//! Wasmtime's portable interpreter bytecode.

use std::fmt;

/// The targets `compile --target` accepts: (short name, Linux triple wasmtime is given).
pub const TARGETS: [(&str, &str); 4] = [
    ("x86_64", "x86_64-unknown-linux-gnu"),
    ("aarch64", "aarch64-unknown-linux-gnu"),
    ("riscv64gc", "riscv64gc-unknown-linux-gnu"),
    ("pulley64", "pulley64"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// This machine, with its CPU features (or Pulley where Cranelift has no backend).
    #[default]
    Native,
    /// One of [`TARGETS`]' triples, baseline CPU features.
    Triple(&'static str),
}

impl Target {
    pub const PULLEY: Target = Target::Triple("pulley64");

    /// A short name (`aarch64`) or a Linux triple (`aarch64-unknown-linux-gnu`).
    pub fn parse(s: &str) -> Result<Target, String> {
        TARGETS.iter().find(|(short, triple)| *short == s || *triple == s).map(|(_, t)| Target::Triple(t)).ok_or_else(
            || {
                let names: Vec<&str> = TARGETS.iter().map(|(s, _)| *s).collect();
                format!("unknown target `{s}` (expected one of {}, or their Linux triples)", names.join(", "))
            },
        )
    }

    /// The triple code for this target runs on.
    pub fn triple(self) -> &'static str {
        match self {
            Target::Native => host_triple(),
            Target::Triple(t) => t,
        }
    }

    /// The CPU architecture (`x86_64`, `aarch64`, `riscv64`, `pulley64`): what must match for
    /// compiled code to run here at all.
    pub fn architecture(self) -> &'static str {
        architecture_of(self.triple())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.triple())
    }
}

/// The triple of the machine wasmbox was built for.
pub fn host_triple() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        "riscv64" => "riscv64gc-unknown-linux-gnu",
        other => other,
    }
}

pub fn architecture_of(triple: &str) -> &'static str {
    match triple.split('-').next().unwrap_or("") {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "riscv64gc" | "riscv64" => "riscv64",
        a if a.starts_with("pulley") => "pulley64",
        _ => "unknown",
    }
}

/// Whether `wasm` (a module or component) uses SIMD: it is valid only with SIMD enabled.
/// Only a compiler asks (it picks the vector ISA flags), so the edge build, which cannot
/// compile, leaves wasmparser's validator out (0.4 MB of its binary).
#[cfg(feature = "cranelift")]
pub fn uses_simd(wasm: &[u8]) -> bool {
    use wasmparser::{Validator, WasmFeatures};
    let without = WasmFeatures::default().difference(WasmFeatures::SIMD | WasmFeatures::RELAXED_SIMD);
    Validator::new_with_features(without).validate_all(wasm).is_err() && Validator::new().validate_all(wasm).is_ok()
}

/// The CPU features precompiled code assumes (`native_info` names, e.g. `v`) that this
/// machine lacks. wasmtime checks x86_64 and aarch64 features itself, but on riscv64 it
/// assumes every feature is present, so code compiled for V would die with SIGILL on a CPU
/// without it: that case is checked here, from the kernel's hardware capability bits.
pub fn missing_cpu_features(features: &[String]) -> Vec<String> {
    if std::env::consts::ARCH != "riscv64" {
        return Vec::new();
    }
    features.iter().filter(|f| f.as_str() == "v" && !riscv_has_extension(b'V')).cloned().collect()
}

/// A single-letter RISC-V extension in AT_HWCAP (bit `letter - 'A'`).
fn riscv_has_extension(letter: u8) -> bool {
    // SAFETY: getauxval has no preconditions; it returns 0 for an unknown type.
    let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
    hwcap & (1 << (letter - b'A')) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_and_triples_are_the_same_target() {
        for (short, triple) in TARGETS {
            assert_eq!(Target::parse(short), Target::parse(triple));
        }
        assert_eq!(Target::parse("riscv64gc").unwrap().architecture(), "riscv64");
        assert!(Target::parse("mips").unwrap_err().contains("x86_64, aarch64, riscv64gc, pulley64"));
        assert_eq!(Target::Native.architecture(), architecture_of(host_triple()));
    }
}
