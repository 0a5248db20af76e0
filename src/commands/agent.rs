//! `wasmbox agent`: keep this device's apps at their desired versions (docs/edge.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

/// Keep this device's apps at the versions agent.toml names (edge agent)
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,

    /// The desired state: sources, apps, grants, health checks
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run in the background (output in $WASMBOX_HOME/agent/agent.log); print its pid
    #[arg(short, long, requires = "config")]
    pub detach: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Show each app's desired reference, current and previous digests, state and last error
    Status {
        /// Print JSON (a list of apps)
        #[arg(long)]
        json: bool,
    },
    /// Make the running agent reread its file and sync now; wait for that pass
    Sync {
        /// Give up waiting after this long
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = wasmbox_engine::units::parse_duration)]
        timeout: Duration,
    },
}

pub fn exec(a: AgentArgs) -> anyhow::Result<i32> {
    let home = crate::home::wasmbox_home()?;
    match (a.command, a.config) {
        (Some(AgentCommand::Status { json }), _) => crate::agent::control::status(&home, json).map(|_| 0),
        (Some(AgentCommand::Sync { timeout }), _) => {
            crate::agent::control::sync(&home, timeout)?;
            crate::agent::control::status(&home, false).map(|_| 0)
        }
        (None, Some(config)) if a.detach => {
            // Checked here so a broken file is reported to the user, not only to the log.
            crate::agent::config::load(&config)?;
            println!("{}", crate::agent::control::detach(&home, &config)?);
            Ok(0)
        }
        (None, Some(config)) => crate::agent::run(&config),
        (None, None) => anyhow::bail!("agent needs --config FILE (or a subcommand: status, sync)"),
    }
}
