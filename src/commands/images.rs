//! `wasmbox images`: list the images in the local store.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;
use wasmbox_image::{display_reference, parse_reference};

use crate::format::Format;

/// List local images
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,

    /// Format the output: `json` (one object per line) or a template such as
    /// 'table {{.Repository}}\t{{.Tag}}\t{{.Size}}' (fields: Repository Tag Reference ID Digest Size)
    #[arg(long, value_name = "FORMAT", conflicts_with = "json")]
    pub format: Option<String>,
}

const FIELDS: &[&str] = &["Repository", "Tag", "Reference", "ID", "Digest", "Size"];

fn fields(r: &Row) -> BTreeMap<&'static str, String> {
    let hex = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
    BTreeMap::from([
        ("Repository", r.repository.clone()),
        ("Tag", r.tag.clone()),
        ("Reference", r.reference.clone()),
        ("ID", hex[..12.min(hex.len())].to_string()),
        ("Digest", r.digest.clone()),
        ("Size", super::human_size(r.size)),
    ])
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
    let format = a.format.as_deref().map(|f| Format::parse(f, FIELDS)).transpose()?;
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
    if let Some(format) = format {
        format.print(&rows.iter().map(fields).collect::<Vec<_>>())?;
        return Ok(0);
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
