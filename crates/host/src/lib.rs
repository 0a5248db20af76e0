//! wasmbox-host: container lifecycle — many containers in one process, each an async task with
//! its own store, grants and limits; their state in SQLite; the daemon and its Unix-socket API.
//!
//! Not here: running one guest (engine), HTTP serving (http), images (image). Main types:
//! [`Manager`], [`ContainerSpec`], [`Status`], [`Client`].

mod admit;
pub mod api;
pub mod client;
mod create;
pub mod daemon;
pub mod db;
pub mod error;
pub mod log_file;
pub mod log_read;
pub mod log_time;
pub mod manager;
mod publish;
pub mod recover;
mod remove;
pub mod spec;
pub mod status;
mod stop;
mod supervise;

pub use client::{Client, ClientError};
pub use db::Container;
pub use error::{ApiError, HostError};
pub use manager::{Manager, Stats};
pub use spec::{ContainerSpec, DirGrant, NnModelGrant, RestartPolicy};
pub use status::Status;
