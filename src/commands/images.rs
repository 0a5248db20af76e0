//! `wasmbox images`: list the images in the local store.

use clap::Args;
use serde::Serialize;
use wasmbox_image::{display_reference, parse_reference};

/// List local images
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row {
    reference: String,
    repository: String,
    tag: String,
    digest: String,
    size: u64,
}

pub fn exec(a: ImagesArgs) -> anyhow::Result<i32> {
    let store = super::image_store()?;
    let mut rows = Vec::new();
    for t in store.list()? {
        let r = parse_reference(&t.reference)?;
        let short = display_reference(&r);
        let repository = short.rsplit_once(':').map(|(repo, _)| repo.to_string()).unwrap_or(short.clone());
        rows.push(Row {
            reference: short,
            repository,
            tag: r.tag().unwrap_or("latest").to_string(),
            digest: t.manifest.digest().to_string(),
            size: store.image_size(&t.manifest).unwrap_or(0),
        });
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    println!("{:<40} {:<16} {:<19} {:>10}", "REPOSITORY", "TAG", "DIGEST", "SIZE");
    for r in rows {
        let digest = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
        println!(
            "{:<40} {:<16} {:<19} {:>10}",
            r.repository,
            r.tag,
            &digest[..12.min(digest.len())],
            super::human_size(r.size)
        );
    }
    Ok(0)
}
