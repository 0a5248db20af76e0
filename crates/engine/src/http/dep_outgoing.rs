//! Outbound HTTP of a composed component's dependencies (`deps`): a dependency sends requests
//! only to hosts its share names (`http:HOST`, or all of the app's), and then still only where
//! the app's `--http-allow` lets the app go; anything else is `http-request-denied`.

use wasmtime::component::{Component, Linker, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as OutgoingHandler;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::HostOutgoingRequest;

use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::deps::{HasDeps, HttpShare, split_dep_import};

pub(crate) fn add_to_linker<T: HasDeps + WasiHttpView>(
    linker: &mut Linker<T>,
    component: &Component,
) -> wasmtime::Result<()> {
    for (name, _) in component.component_type().imports(component.engine()) {
        let Some((index, original)) = split_dep_import(name) else { continue };
        if original.split('@').next() != Some("wasi:http/outgoing-handler") {
            continue;
        }
        linker.instance(name)?.func_wrap(
            "handle",
            move |mut store,
                  (request, options): (
                Resource<HostOutgoingRequest>,
                Option<Resource<wasmtime_wasi_http::RequestOptions>>,
            )| {
                let host = store.data_mut();
                let allowed = match host.deps().0.http_share(index) {
                    HttpShare::None => false,
                    HttpShare::All => true,
                    HttpShare::Rules(rules) => {
                        let req = host.http().table.get(&request)?;
                        let https = matches!(req.scheme, Some(Scheme::Https));
                        let (name, port) = split_authority(req.authority.as_deref().unwrap_or(""), https);
                        rules.iter().any(|r| r.allows(name, port, https))
                    }
                };
                if !allowed {
                    // The request was handed over: drop it so it does not stay in the table.
                    host.http().table.delete(request)?;
                    if let Some(options) = options {
                        host.http().table.delete(options)?;
                    }
                    return Ok((Err(ErrorCode::HttpRequestDenied),));
                }
                match OutgoingHandler::handle(&mut host.http(), request, options) {
                    Ok(future) => Ok((Ok(future),)),
                    Err(e) => Ok((Err(e.downcast()?),)),
                }
            },
        )?;
    }
    Ok(())
}

/// `host[:port]` (or `[v6]:port`) of a request's authority; the scheme's port when none is given.
fn split_authority(authority: &str, https: bool) -> (&str, u16) {
    let default = if https { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().unwrap_or(0)),
        _ => (authority, default),
    };
    (host, port)
}

#[cfg(test)]
mod tests {
    #[test]
    fn authorities_split() {
        assert_eq!(super::split_authority("api.example.com", true), ("api.example.com", 443));
        assert_eq!(super::split_authority("127.0.0.1:8080", false), ("127.0.0.1", 8080));
        assert_eq!(super::split_authority("[::1]:81", false), ("[::1]", 81));
        assert_eq!(super::split_authority("[::1]", false), ("[::1]", 80));
    }
}
