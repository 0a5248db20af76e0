//! Is a new version healthy? Either it keeps running for a while (no exit, no restart by its
//! policy), or its port answers `GET PATH` with 2xx before a timeout. An error says what was
//! seen last, for `agent status`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::Health;
use super::deploy::{Daemon, alive};

/// How often the container and the health path are looked at.
const TICK: Duration = Duration::from_millis(200);

pub async fn wait(daemon: &Daemon, name: &str, health: &Health, port: Option<SocketAddr>) -> Result<(), String> {
    let start = Instant::now();
    // The candidate was just created: any restart by its policy is a failed start.
    let restarts = 0;
    loop {
        let c = daemon.get(name).await.map_err(|e| format!("{e:#}"))?.ok_or("the container was removed")?;
        let secs = start.elapsed().as_secs_f64();
        if !alive(&c) || c.restarts != restarts {
            let code = c.exit_code.map_or("no exit code".to_string(), |c| format!("exit code {c}"));
            let reason = c.reason.as_ref().map(|r| format!(", {r}")).unwrap_or_default();
            let how = if alive(&c) { "restarted after exiting" } else { "exited" };
            return Err(format!("it {how} within {secs:.1}s ({code}{reason})"));
        }
        match health {
            Health::Running(d) if start.elapsed() >= *d => return Ok(()),
            Health::Running(_) => {}
            Health::Http { path, timeout } => {
                let port = port.ok_or("health.http needs a port")?;
                let last = match get(port, path).await {
                    Ok(status) if (200..300).contains(&status) => return Ok(()),
                    Ok(status) => format!("GET {path} answered {status}"),
                    Err(e) => format!("GET {path}: {e}"),
                };
                if start.elapsed() >= *timeout {
                    return Err(format!("no 2xx within {}s ({last})", timeout.as_secs_f64()));
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// The status code of `GET path` on `addr` (an unspecified address is asked on loopback).
async fn get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: wasmbox-agent\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let mut got = 0;
        while got < 12 {
            let n = stream.read(&mut head[got..]).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the connection closed without an answer".to_string());
            }
            got += n;
        }
        let line = String::from_utf8_lossy(&head[..got]).into_owned();
        line.strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {:?}", line.lines().next().unwrap_or_default()))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange).await.map_err(|_| "no answer within 2s".to_string())?
}
