//! `wasmbox stop`: end containers — after `-t` seconds of grace, then forced.

use clap::Args;

/// Stop running containers (WASI has no signals: the guest gets -t seconds to finish, then is stopped)
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before stopping the guest forcibly
    #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECS")]
    pub time: u64,

    /// Container names or id prefixes
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn exec(a: StopArgs) -> anyhow::Result<i32> {
    super::containers::each("POST", &a.containers, |c| format!("/v1/containers/{c}/stop?t={}", a.time))
}
