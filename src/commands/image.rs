//! `wasmbox image prune`: delete blobs no tagged image uses.

use clap::{Args, Subcommand};

/// Manage the local image store
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Remove blobs that no tagged image references
    Prune,
}

pub fn exec(a: ImageArgs) -> anyhow::Result<i32> {
    match a.command {
        ImageCommand::Prune => {
            let (count, bytes) = super::image_store()?.prune()?;
            println!("removed {count} unreferenced blobs ({bytes} bytes)");
            Ok(0)
        }
    }
}
