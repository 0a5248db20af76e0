//! `build_ctx`: the one place `Capabilities` become a WASI context.

use std::sync::Arc;

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::capabilities::{Capabilities, Output, Stdin};
use crate::error::EngineError;
use crate::net::SocketUse;
use crate::output::{OutStream, SinkStream};

/// Builds the WASI context builder for `caps`. The caller finishes it with `build()` for a
/// component or `build_p1()` for a core module; nothing is granted that `caps` does not list.
pub fn build_ctx(caps: &Capabilities) -> Result<WasiCtxBuilder, EngineError> {
    let mut b = WasiCtxBuilder::new();
    match &caps.stdin {
        Stdin::Inherit => b.inherit_stdin(),
        Stdin::Null => &mut b,
        Stdin::Bytes(bytes) => b.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(bytes.clone())),
    };
    if let Some(d) = &caps.deterministic {
        d.apply(&mut b);
    }
    match &caps.output {
        Output::Inherit => b.inherit_stdout().inherit_stderr(),
        Output::Sink(sink) => b
            .stdout(SinkStream::new(sink.clone(), OutStream::Stdout))
            .stderr(SinkStream::new(sink.clone(), OutStream::Stderr)),
    };
    b.args(&caps.args);
    b.envs(&caps.env);

    for p in &caps.preopens {
        let what = || format!("--dir {}:{}", p.host.display(), p.guest);
        if !p.host.is_dir() {
            return Err(EngineError::Grant {
                what: what(),
                source: anyhow::anyhow!("{} is not a directory on the host", p.host.display()),
            });
        }
        let perms = if p.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        b.preopened_dir(&p.host, &p.guest, perms).map_err(|e| EngineError::Grant { what: what(), source: e.into() })?;
    }

    // Network: TCP and UDP exist only when something is allowed, and then every address is
    // checked against the policy: connect and send-to against connect rules, bind and listen
    // against `listen=` rules.
    check_sockets(&mut b, Arc::new(caps.net.clone()));
    Ok(b)
}

/// Enables sockets when `net` allows anything, and checks every address a socket uses against
/// it. A socket keeps the check it was created with (wasmtime-wasi copies it into the socket),
/// so sockets made from a dependency's context follow the dependency's share (`deps`).
pub(crate) fn check_sockets(b: &mut WasiCtxBuilder, net: Arc<crate::net::NetPolicy>) {
    let enabled = !net.is_empty();
    b.allow_tcp(enabled).allow_udp(enabled).allow_ip_name_lookup(enabled);
    b.socket_addr_check(move |addr, usage: SocketAddrUse| {
        let how = match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => SocketUse::Bind,
            SocketAddrUse::TcpListen => SocketUse::Listen,
            SocketAddrUse::TcpAccept => SocketUse::Accept,
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => SocketUse::Connect,
            SocketAddrUse::UdpReceive => SocketUse::Receive,
        };
        let allowed = net.allows(addr, how);
        if !allowed {
            tracing::debug!(%addr, ?usage, "socket address denied by --net-allow");
        }
        Box::pin(async move { allowed })
    });
}
