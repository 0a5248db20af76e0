//! `wasmbox kill`: end running containers at once.

use clap::Args;

/// Stop running containers at once
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Container names or id prefixes
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn exec(a: KillArgs) -> anyhow::Result<i32> {
    super::containers::each("POST", &a.containers, |c| format!("/v1/containers/{c}/kill"))
}
