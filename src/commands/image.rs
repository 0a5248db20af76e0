//! `wasmbox image prune|save|load`: the local image store as a whole.

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
    /// Write images, with their stored signatures, as an OCI Image Layout (tar or directory)
    Save(super::image_save::SaveArgs),
    /// Read images (and their signatures) from an OCI Image Layout tar or directory
    Load(super::image_load::LoadArgs),
}

pub fn exec(a: ImageArgs) -> anyhow::Result<i32> {
    match a.command {
        ImageCommand::Prune => {
            let (count, bytes) = super::image_store()?.prune()?;
            println!("removed {count} unreferenced blobs ({bytes} bytes)");
            Ok(0)
        }
        ImageCommand::Save(a) => super::image_save::exec(a),
        ImageCommand::Load(a) => super::image_load::exec(a),
    }
}
