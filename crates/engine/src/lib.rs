//! wasmbox-engine: the only crate that touches wasmtime — engine configuration, the compile
//! cache, limits, capabilities and running a module or component as one container.
//!
//! Not here: images, HTTP serving, container lifecycle (other crates build on this one).
//! Main types: [`Runtime`], [`Artifact`], [`Compiled`], [`Capabilities`], [`Limits`], [`EngineError`].

pub mod artifact;
pub mod cache;
pub mod capabilities;
pub mod compile;
pub mod deps;
pub mod determinism;
pub mod engine;
pub mod error;
pub mod fs;
pub mod http;
pub mod inspect;
pub mod limits;
mod lookup;
pub mod mapped;
pub mod meter;
pub mod native_info;
pub mod net;
pub mod nn;
pub mod output;
pub mod reserve;
pub mod run;
mod stable_fs;
pub mod target;
pub mod tier;
pub mod units;
mod wasi;
pub mod wit;

pub use artifact::{Artifact, Kind};
pub use cache::CompileCache;
pub use capabilities::{Capabilities, Output, Preopen, Stdin};
pub use compile::{CompileSource, Compiled, compile};
pub use engine::{EngineOptions, Runtime};
pub use error::{EngineError, LimitHit};
pub use limits::Limits;
pub use net::{NetPolicy, NetRule};
pub use nn::{NnGrants, NnModel};
pub use output::{GuestOutput, OutStream};
pub use run::{RunStats, preflight, run, run_observed};
pub use target::Target;
pub use tier::{Compiler, compile_first, optimize};
