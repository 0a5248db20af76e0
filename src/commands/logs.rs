//! `wasmbox logs`: print a container's stdout and stderr (kept in its capped log file).

use std::io::Write;

use clap::Args;
use http_body_util::BodyExt;

/// Print a container's output
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops (Ctrl-C to quit)
    #[arg(short, long)]
    pub follow: bool,

    /// Only the last N lines (or `all`)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,

    /// Container name or id prefix
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn exec(a: LogsArgs) -> anyhow::Result<i32> {
    if a.tail != "all" && a.tail.parse::<usize>().is_err() {
        anyhow::bail!("invalid --tail `{}` (expected a number of lines or `all`)", a.tail);
    }
    super::block_on(async {
        let client = crate::daemon_client::connect().await?;
        let path = format!(
            "/v1/containers/{}/logs?tail={}&follow={}",
            super::containers::encode(&a.container),
            a.tail,
            a.follow
        );
        let resp = match client.send("GET", &path, None).await {
            Ok(r) => r,
            Err(e) => return anyhow::Ok(super::containers::report(&e)),
        };
        let mut body = resp.into_body();
        let mut out = std::io::stdout().lock();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(data) = frame.data_ref()
                && out.write_all(data).and_then(|()| out.flush()).is_err()
            {
                break; // stdout closed (`| head`)
            }
        }
        anyhow::Ok(0)
    })?
}
