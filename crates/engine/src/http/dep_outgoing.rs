//! Outbound HTTP of a composed component's dependencies (`deps`): a dependency sends requests
//! only when the composition shared the app's `--http-allow` with it (and then under the same
//! rules); otherwise every request is `http-request-denied`.

use wasmtime::component::{Component, Linker, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as OutgoingHandler;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::HostOutgoingRequest;

use crate::deps::{HasDeps, split_dep_import};

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
                if !host.deps().0.shares_http(index) {
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
