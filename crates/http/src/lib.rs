//! wasmbox-http: the serverless `wasi:http` front end — a hyper HTTP/1.1 server that answers
//! each request with a fresh instance of the component its route names
//! (`wasmbox_engine::http::HttpHandler`), with an access log and Prometheus metrics.
//!
//! Not here: instantiation and limits inside the guest (engine). Main items: [`ServeOptions`],
//! [`serve`], [`Router`].

mod access_log;
mod metrics;
mod router;
mod server;
mod tracked;

pub use access_log::{LogFormat, LogTarget};
pub use router::{Route, Router};
pub use server::{ServeOptions, serve};
