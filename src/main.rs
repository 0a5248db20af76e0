//! The `wasmbox` command line: clap dispatch only; each subcommand lives in `commands/<verb>.rs`.

mod agent;
#[cfg(feature = "compose")]
mod app_deps;
mod commands;
mod daemon_client;
mod flags;
mod format;
mod home;
mod nn_grants;
mod progress;
mod receipt;
mod report;
mod requests;
mod tree_digest;
mod trust;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wasmbox",
    about = "Run WebAssembly modules and components as deny-by-default containers",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(commands::run::RunArgs),
    Compile(commands::compile::CompileArgs),
    Inspect(commands::inspect::InspectArgs),
    #[cfg(feature = "compose")]
    Compose(commands::compose::ComposeArgs),
    Build(commands::build::BuildArgs),
    Images(commands::images::ImagesArgs),
    Tag(commands::tag::TagArgs),
    Rmi(commands::rmi::RmiArgs),
    Image(commands::image::ImageArgs),
    Pull(commands::pull::PullArgs),
    Push(commands::push::PushArgs),
    Login(commands::login::LoginArgs),
    Serve(commands::serve::ServeArgs),
    Daemon(commands::daemon::DaemonArgs),
    Agent(commands::agent::AgentArgs),
    Ps(commands::ps::PsArgs),
    Logs(commands::logs::LogsArgs),
    Stop(commands::stop::StopArgs),
    Kill(commands::kill::KillArgs),
    Rm(commands::rm::RmArgs),
    Start(commands::start::StartArgs),
    Restart(commands::restart::RestartArgs),
    Stats(commands::stats::StatsArgs),
    Key(commands::key::KeyArgs),
    Sign(commands::sign::SignArgs),
    Verify(commands::verify::VerifyArgs),
    Policy(commands::policy::PolicyArgs),
    System(commands::system::SystemArgs),
    Version(commands::version::VersionArgs),
    Completions(commands::completions::CompletionsArgs),
}

/// The clap definition with the version line (`-V`), which is known only at run time.
fn cli_command() -> clap::Command {
    let line: &'static str = Box::leak(commands::version::short_line().into_boxed_str());
    Cli::command().version(line)
}

fn main() {
    report::quiet_error_backtraces();
    home::private_umask();
    report::install_panic_hook();
    report::init_logging();
    // `wasmbox --version` prints everything `wasmbox version` does (the engine hash needs an
    // engine, so it is not computed for every parse); `-V` prints one line.
    if std::env::args().nth(1).as_deref() == Some("--version") && std::env::args().len() == 2 {
        let args = commands::version::VersionArgs { json: false };
        std::process::exit(report::exit_code(commands::version::exec(args)));
    }
    // The background half of a tiered first run, started by `run` only: not a command users
    // see (clap_complete would list even a hidden subcommand).
    if std::env::args().nth(1).as_deref() == Some(commands::optimize::COMMAND) {
        let file = std::env::args_os().nth(2).map(std::path::PathBuf::from).unwrap_or_default();
        std::process::exit(report::exit_code(commands::optimize::exec(&file)));
    }
    let cli = match cli_command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => report::clap_error(e),
    };
    let result = match cli.command {
        Command::Run(args) => commands::run::exec(args),
        Command::Compile(args) => commands::compile::exec(args),
        Command::Inspect(args) => commands::inspect::exec(args),
        #[cfg(feature = "compose")]
        Command::Compose(args) => commands::compose::exec(args),
        Command::Build(args) => commands::build::exec(args),
        Command::Images(args) => commands::images::exec(args),
        Command::Tag(args) => commands::tag::exec(args),
        Command::Rmi(args) => commands::rmi::exec(args),
        Command::Image(args) => commands::image::exec(args),
        Command::Pull(args) => commands::pull::exec(args),
        Command::Push(args) => commands::push::exec(args),
        Command::Login(args) => commands::login::exec(args),
        Command::Serve(args) => commands::serve::exec(args),
        Command::Daemon(args) => commands::daemon::exec(args),
        Command::Agent(args) => commands::agent::exec(args),
        Command::Ps(args) => commands::ps::exec(args),
        Command::Logs(args) => commands::logs::exec(args),
        Command::Stop(args) => commands::stop::exec(args),
        Command::Kill(args) => commands::kill::exec(args),
        Command::Rm(args) => commands::rm::exec(args),
        Command::Start(args) => commands::start::exec(args),
        Command::Restart(args) => commands::restart::exec(args),
        Command::Stats(args) => commands::stats::exec(args),
        Command::Key(args) => commands::key::exec(args),
        Command::Sign(args) => commands::sign::exec(args),
        Command::Verify(args) => commands::verify::exec(args),
        Command::Policy(args) => commands::policy::exec(args),
        Command::System(args) => commands::system::exec(args),
        Command::Version(args) => commands::version::exec(args),
        Command::Completions(args) => commands::completions::exec(args, cli_command()),
    };
    std::process::exit(report::exit_code(result));
}
