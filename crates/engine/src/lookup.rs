//! `wasi:sockets/ip-name-lookup` restricted to the host names `--net-allow` lists.
//!
//! wasmtime-wasi can only switch name lookups on or off; a guest that may reach
//! `api.example.com:443` must not be able to resolve (and so leak data through DNS to) any
//! other name. This wraps wasmtime-wasi's implementation and refuses unlisted names first.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, ErrorCode, Host, HostResolveAddressStream, IpAddress, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, Network};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView};

use crate::net::NetPolicy;

/// Store data that can hand out its sockets view together with its network policy.
pub trait HasNetPolicy: WasiSocketsView {
    fn net_policy(&self) -> Arc<NetPolicy>;
}

pub struct FilteredLookup<'a> {
    inner: WasiSocketsCtxView<'a>,
    policy: Arc<NetPolicy>,
}

impl Host for FilteredLookup<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        if !self.policy.allows_lookup(&name) {
            tracing::debug!(%name, "name lookup denied by --net-allow");
            return Err(ErrorCode::PermanentResolverFailure.into());
        }
        self.inner.resolve_addresses(network, name)
    }
}

// The lookup interface uses the network interface's error type, so its host trait comes along.
impl network::Host for FilteredLookup<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.inner.convert_error_code(error)
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        self.inner.network_error_code(err)
    }
}

impl network::HostNetwork for FilteredLookup<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, network)
    }
}

impl HostResolveAddressStream for FilteredLookup<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        self.inner.resolve_next_address(stream)
    }

    fn subscribe(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
        self.inner.subscribe(stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.inner, stream)
    }
}

struct Filtered;

impl HasData for Filtered {
    type Data<'a> = FilteredLookup<'a>;
}

/// Replaces the ip-name-lookup functions already in `linker` with the filtered ones.
pub fn shadow_name_lookup<T: HasNetPolicy + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    ip_name_lookup::add_to_linker::<T, Filtered>(linker, |t| {
        let policy = t.net_policy();
        FilteredLookup { inner: t.sockets(), policy }
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
