//! wasmbox-http: the serverless `wasi:http` front end — a hyper HTTP/1.1 server that answers
//! each request with a fresh instance of one component (`wasmbox_engine::http::HttpHandler`).
//!
//! Not here: instantiation and limits inside the guest (engine). Main items: [`ServeOptions`],
//! [`serve`].

mod server;

pub use server::{ServeOptions, serve};
