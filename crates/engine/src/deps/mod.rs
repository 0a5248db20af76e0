//! Dependency isolation for composed components (`wasmbox compose`, `[dependencies]`).
//!
//! When a dependency is plugged into an app, the WASI interfaces through which host
//! capabilities reach a guest (preopened directories, the environment, sockets, outbound HTTP,
//! WASI-NN models) are not shared with the app: the composition imports the dependency's own
//! copy under a name of its own ([`names`]), and the host links that copy to a context holding
//! only what the dependency was granted ([`link`]). The grants travel in a custom section of
//! the composed component ([`record`]); without one, a dependency gets nothing.

pub mod link;
pub mod names;
pub mod record;

pub use link::{DepContexts, HasDeps, HttpShare};
pub use names::{ISOLATED, dep_import_name, split_dep_import};
pub use record::{DepGrants, DepRecord, Record, read_record};
