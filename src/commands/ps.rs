//! `wasmbox ps`: list containers (running ones; all with `-a`).

use std::collections::BTreeMap;

use clap::Args;
use wasmbox_host::{Container, Status};

use super::containers::human_duration;
use crate::format::Format;

/// List containers
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default: running ones)
    #[arg(short, long)]
    pub all: bool,

    /// Print JSON (one array of full records)
    #[arg(long)]
    pub json: bool,

    /// Print ids only
    #[arg(short, long)]
    pub quiet: bool,

    /// Format the output: `json` (one object per line) or a template such as
    /// 'table {{.ID}}\t{{.Names}}\t{{.Status}}' (fields: ID Names Name Image Command CreatedAt RunningFor Status State ExitCode Ports)
    #[arg(long, value_name = "FORMAT", conflicts_with_all = ["json", "quiet"])]
    pub format: Option<String>,
}

/// The fields `--format` knows (docker's names where docker has the field).
const FIELDS: &[&str] =
    &["ID", "Names", "Name", "Image", "Command", "CreatedAt", "RunningFor", "Status", "State", "ExitCode", "Ports"];

fn fields(c: &Container, now: i64) -> BTreeMap<&'static str, String> {
    let created = wasmbox_host::log_time::format(c.created_ms * 1_000_000);
    BTreeMap::from([
        ("ID", c.id[..12].to_string()),
        ("Names", c.name.clone()),
        ("Name", c.name.clone()),
        ("Image", c.spec.source.clone()),
        ("Command", c.spec.args.iter().skip(1).cloned().collect::<Vec<_>>().join(" ")),
        ("CreatedAt", format!("{}Z", &created[..19])),
        ("RunningFor", format!("{} ago", human_duration(now - c.created_ms))),
        ("Status", status_text(c, now)),
        ("State", c.status.as_str().to_string()),
        ("ExitCode", c.exit_code.map(|x| x.to_string()).unwrap_or_default()),
        ("Ports", c.spec.publish.clone().unwrap_or_default()),
    ])
}

pub fn exec(a: PsArgs) -> anyhow::Result<i32> {
    let format = a.format.as_deref().map(|f| Format::parse(f, FIELDS)).transpose()?;
    let list: Vec<Container> = super::block_on(async {
        let client = crate::daemon_client::connect().await?;
        anyhow::Ok(client.call("GET", &format!("/v1/containers?all={}", a.all), None).await?)
    })??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if let Some(format) = format {
        let now = wasmbox_host::manager::now_ms();
        format.print(&list.iter().map(|c| fields(c, now)).collect::<Vec<_>>())?;
        return Ok(0);
    }
    if a.quiet {
        for c in &list {
            println!("{}", &c.id[..12]);
        }
        return Ok(0);
    }
    let now = wasmbox_host::manager::now_ms();
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|c| {
            [
                c.id[..12].to_string(),
                c.name.clone(),
                c.spec.source.clone(),
                status_text(c, now),
                c.exit_code.map(|x| x.to_string()).unwrap_or_default(),
                format!("{} ago", human_duration(now - c.created_ms)),
                match (c.status, c.started_ms) {
                    (Status::Running, Some(s)) => human_duration(now - s),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    let header = ["CONTAINER ID", "NAME", "SOURCE", "STATUS", "EXIT CODE", "CREATED", "UPTIME"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}

fn status_text(c: &Container, now: i64) -> String {
    let since = |t: Option<i64>| human_duration(now - t.unwrap_or(now));
    match c.status {
        Status::Running => format!("Up {}", since(c.started_ms)),
        Status::Restarting => format!("Restarting ({})", c.exit_code.unwrap_or(-1)),
        Status::Created => "Created".into(),
        Status::Exited => {
            let code = c.exit_code.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
            let why = c.reason.as_deref().map(|r| format!(": {}", r.lines().next().unwrap_or(r))).unwrap_or_default();
            format!("Exited ({code}) {} ago{why}", since(c.finished_ms))
        }
    }
}
