//! `wasmbox rm`: remove containers and their logs.

use clap::Args;

/// Remove containers (a running one only with --force, which kills it first)
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill the container first if it is running
    #[arg(short, long)]
    pub force: bool,

    /// Container names or id prefixes
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn exec(a: RmArgs) -> anyhow::Result<i32> {
    super::containers::each("DELETE", &a.containers, |c| format!("/v1/containers/{c}?force={}", a.force))
}
