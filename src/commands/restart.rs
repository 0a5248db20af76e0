//! `wasmbox restart`: stop (with grace) and start containers again.

use clap::Args;

/// Restart containers
#[derive(Args, Debug)]
pub struct RestartArgs {
    /// Seconds to wait before stopping the guest forcibly
    #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECS")]
    pub time: u64,

    /// Container names or id prefixes
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn exec(a: RestartArgs) -> anyhow::Result<i32> {
    super::containers::each("POST", &a.containers, |c| format!("/v1/containers/{c}/restart?t={}", a.time))
}
