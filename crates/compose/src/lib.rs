//! wasmbox-compose: plugs dependency components into an app component (`wasmbox compose
//! APP --plug DEP…`, and `[dependencies]` in `wasmbox.toml`).
//!
//! Every import of a part that exactly one dependency exports (by name, or a semver-compatible
//! version of it) is wired to that export; imports nobody plugs stay imports of the result,
//! which only `wasi:` interfaces may do. A dependency's capability-bearing WASI imports become
//! imports of its own (wasmbox-engine's `deps`), so it gets none of the app's grants unless
//! the record written into the result grants them. No wasmtime here.

mod error;
mod plug;
mod wit_text;

pub use error::{ComposeError, Mismatch};
pub use plug::{Composed, Dep, compose};
