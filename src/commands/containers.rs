//! What the container commands share: sending one request per named container and reporting
//! each failure on its own line (docker's way: the others still happen; exit 1 if any failed).

use wasmbox_host::{ApiError, Client, ClientError, Container};

use crate::daemon_client;

/// Runs `path_of(name)` as a POST/DELETE for each name; prints the name on success.
pub fn each(method: &str, names: &[String], path_of: impl Fn(&str) -> String) -> anyhow::Result<i32> {
    super::block_on(async {
        let client = daemon_client::connect().await?;
        let mut code = 0;
        for name in names {
            match client.call::<Container>(method, &path_of(&encode(name)), None).await {
                Ok(_) => println!("{name}"),
                Err(e) => code = code.max(report(&e)),
            }
        }
        anyhow::Ok(code)
    })?
}

/// One container's JSON record.
pub async fn get(client: &Client, name: &str) -> Result<Container, ClientError> {
    client.call("GET", &format!("/v1/containers/{}", encode(name)), None).await
}

/// Prints `error: …` (and a hint) for a failed request; returns its exit code.
pub fn report(e: &ClientError) -> i32 {
    eprintln!("error: {e}");
    match e {
        ClientError::Api(ApiError { hint: Some(hint), .. }) => eprintln!("hint: {hint}"),
        ClientError::Unsafe { .. } => {
            eprintln!("hint: remove the file if it is not yours, or check $WASMBOX_HOME")
        }
        _ => {}
    }
    match e {
        ClientError::Api(api) => api.exit_code(),
        _ => crate::report::WASMBOX_FAILED,
    }
}

/// Container names and ids are `[A-Za-z0-9_.-]`; anything else is escaped so it cannot change
/// the request path.
pub fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `3 seconds`, `5 minutes`, … as docker prints durations.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0 => "less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "about a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "about an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}
