//! Paths of the guest programs wasmbox tests run: Rust guests built by `build.rs` for
//! wasm32-wasip1 (`*_MODULE`, core modules) and wasm32-wasip2 (`*_COMPONENT`), plus `.wat` guests.
//!
//! The `probe` guest takes an operation as its first argument (see `guests/src/bin/probe.rs`).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// Directory with the hand-written `.wat` guests (`loop.wat`, `unreachable.wat`, ...).
pub const WAT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wat");

/// Path of the `.wat` guest named `name` (without extension).
pub fn wat(name: &str) -> String {
    format!("{WAT_DIR}/{name}.wat")
}
