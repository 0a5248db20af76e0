//! `wasmbox start`: start stopped containers again.

use clap::Args;

/// Start stopped containers
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Container names or id prefixes
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn exec(a: StartArgs) -> anyhow::Result<i32> {
    super::containers::each("POST", &a.containers, |c| format!("/v1/containers/{c}/start"))
}
