//! `wasmbox stats`: what running containers use — CPU time, linear memory, fuel, uptime, restarts.

use std::time::Duration;

use clap::Args;
use wasmbox_host::Stats;

/// Show containers' resource use (refreshed every second unless --no-stream)
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print once and exit
    #[arg(long)]
    pub no_stream: bool,

    /// Include stopped containers
    #[arg(short, long)]
    pub all: bool,

    /// Print JSON
    #[arg(long)]
    pub json: bool,

    /// Container names or id prefixes (default: all running)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn exec(a: StatsArgs) -> anyhow::Result<i32> {
    super::block_on(async {
        let client = crate::daemon_client::connect().await?;
        loop {
            let mut stats: Vec<Stats> = Vec::new();
            if a.containers.is_empty() {
                stats = client.call("GET", &format!("/v1/stats?all={}", a.all), None).await?;
            } else {
                for name in &a.containers {
                    let path = format!("/v1/containers/{}/stats", super::containers::encode(name));
                    match client.call("GET", &path, None).await {
                        Ok(s) => stats.push(s),
                        Err(e) => return anyhow::Ok(super::containers::report(&e)),
                    }
                }
            }
            print(&stats, a.json, !a.no_stream)?;
            if a.no_stream {
                return anyhow::Ok(0);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })?
}

fn print(stats: &[Stats], json: bool, clear: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(stats)?);
        return Ok(());
    }
    if clear && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        print!("\x1b[2J\x1b[H");
    }
    println!(
        "{:<12}   {:<20}   {:>10}   {:>12}   {:>14}   {:>10}   {:>8}",
        "CONTAINER ID", "NAME", "CPU TIME", "MEMORY", "FUEL USED", "UPTIME", "RESTARTS"
    );
    for s in stats {
        println!(
            "{:<12}   {:<20}   {:>10}   {:>12}   {:>14}   {:>10}   {:>8}",
            &s.id[..12],
            s.name,
            format!("{:.3}s", s.cpu_ms as f64 / 1000.0),
            super::human_size(s.memory_bytes),
            s.fuel_used.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            format!("{}s", s.uptime_ms / 1000),
            s.restarts
        );
    }
    Ok(())
}
