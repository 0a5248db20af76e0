//! The `wasmbox` command line: clap dispatch only; each subcommand lives in `commands/<verb>.rs`.

mod commands;
mod daemon_client;
mod flags;
mod home;
mod progress;
mod report;
mod requests;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wasmbox",
    version,
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
    Ps(commands::ps::PsArgs),
    Logs(commands::logs::LogsArgs),
    Stop(commands::stop::StopArgs),
    Kill(commands::kill::KillArgs),
    Rm(commands::rm::RmArgs),
    Start(commands::start::StartArgs),
    Restart(commands::restart::RestartArgs),
    Stats(commands::stats::StatsArgs),
}

fn main() {
    home::private_umask();
    report::install_panic_hook();
    report::init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => report::clap_error(e),
    };
    let result = match cli.command {
        Command::Run(args) => commands::run::exec(args),
        Command::Compile(args) => commands::compile::exec(args),
        Command::Inspect(args) => commands::inspect::exec(args),
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
        Command::Ps(args) => commands::ps::exec(args),
        Command::Logs(args) => commands::logs::exec(args),
        Command::Stop(args) => commands::stop::exec(args),
        Command::Kill(args) => commands::kill::exec(args),
        Command::Rm(args) => commands::rm::exec(args),
        Command::Start(args) => commands::start::exec(args),
        Command::Restart(args) => commands::restart::exec(args),
        Command::Stats(args) => commands::stats::exec(args),
    };
    std::process::exit(report::exit_code(result));
}
