//! `wasmbox completions SHELL`: a completion script generated from the clap definition, so it
//! always covers every verb and flag of this binary.

use clap::{Args, ValueEnum};
use clap_complete::Shell;

/// Print a shell completion script (bash, zsh, fish, powershell)
#[derive(Args, Debug)]
#[command(
    after_help = "Install, e.g. for bash:\n  wasmbox completions bash > ~/.local/share/bash-completion/completions/wasmbox\n\
for zsh (a directory on your $fpath):\n  wasmbox completions zsh > ~/.zfunc/_wasmbox\n\
for fish:\n  wasmbox completions fish > ~/.config/fish/completions/wasmbox.fish"
)]
pub struct CompletionsArgs {
    #[arg(value_name = "SHELL")]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

pub fn exec(a: CompletionsArgs, mut cli: clap::Command) -> anyhow::Result<i32> {
    let shell = match a.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut cli, "wasmbox", &mut std::io::stdout());
    Ok(0)
}
