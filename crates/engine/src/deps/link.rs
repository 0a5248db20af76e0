//! Links a composed component's renamed dependency imports (see `names`) to contexts that hold
//! only what each dependency was granted (see `record`).

use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as Preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::Descriptor;
use wasmtime_wasi::p2::bindings::sockets::instance_network::Host as InstanceNetwork;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as TcpCreate;
use wasmtime_wasi::p2::bindings::sockets::udp_create_socket::Host as UdpCreate;
use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView};
use wasmtime_wasi::{WasiCtx, WasiView};

use super::names::split_dep_import;
use super::record::{ALL, DepGrants, Record};
use crate::capabilities::{Capabilities, Preopen};
use crate::error::EngineError;

/// One dependency's share of the app's grants.
struct DepContext {
    /// Its own WASI context: only the directories it may see.
    wasi: WasiCtx,
    env: Vec<(String, String)>,
    http: HttpShare,
    nn: Vec<String>,
}

/// What of the app's outbound HTTP a dependency may use.
#[derive(Clone)]
pub enum HttpShare {
    None,
    All,
    /// Only these hosts (and still only where the app may go).
    Rules(Vec<crate::http::HttpRule>),
}

/// The contexts of a run's dependencies, by index. A dependency the record does not list (or a
/// run without a record, e.g. of precompiled code) gets nothing.
#[derive(Default)]
pub struct DepContexts {
    deps: Vec<DepContext>,
}

impl DepContexts {
    /// Derives each dependency's context from the app's grants: a dependency sees a directory,
    /// variable or the network only if the app has it *and* the record grants it to that
    /// dependency.
    pub fn new(app: &Capabilities, record: Option<&Record>) -> Result<DepContexts, EngineError> {
        let Some(record) = record else { return Ok(DepContexts::default()) };
        let mut deps = Vec::with_capacity(record.deps.len());
        for dep in &record.deps {
            deps.push(DepContext::new(app, &dep.grants)?);
        }
        Ok(DepContexts { deps })
    }

    fn get(&mut self, index: usize) -> Option<&mut DepContext> {
        self.deps.get_mut(index)
    }

    /// What dependency `index` may use of the app's outbound HTTP.
    pub fn http_share(&self, index: usize) -> HttpShare {
        self.deps.get(index).map_or(HttpShare::None, |d| d.http.clone())
    }

    /// Whether dependency `index` may load the app's model `name`.
    pub fn may_load(&self, index: usize, name: &str) -> bool {
        self.deps.get(index).is_some_and(|d| d.nn.iter().any(|m| m == name))
    }
}

impl DepContext {
    fn new(app: &Capabilities, grants: &DepGrants) -> Result<DepContext, EngineError> {
        let mut caps = Capabilities {
            deterministic: app.deterministic,
            stdin: crate::capabilities::Stdin::Null,
            ..Default::default()
        };
        for spec in &grants.dirs {
            let (guest, ro) = match spec.strip_suffix(":ro") {
                Some(guest) => (guest, true),
                None => (spec.as_str(), false),
            };
            if let Some(p) = app.preopens.iter().find(|p| p.guest == guest) {
                caps.preopens.push(Preopen {
                    host: p.host.clone(),
                    guest: p.guest.clone(),
                    read_only: p.read_only || ro,
                });
            }
        }
        let mut env: Vec<(String, String)> =
            app.env.iter().filter(|(k, _)| grants.env.iter().any(|n| n == k)).cloned().collect();
        for (k, v) in &grants.env_set {
            env.retain(|(name, _)| name != k);
            env.push((k.clone(), v.clone()));
        }
        // Sockets made from this context keep its check: the app's rules the share names,
        // as the app's names were resolved (no lookups of its own).
        caps.net = if grants.net.iter().any(|r| r == ALL) {
            app.net.clone()
        } else {
            app.net.subset(|rule| grants.net.iter().any(|g| *g == rule.to_string()))
        };
        let wasi = crate::wasi::build_ctx(&caps)?.build();
        let http = if grants.http.iter().any(|r| r == ALL) {
            HttpShare::All
        } else if grants.http.is_empty() {
            HttpShare::None
        } else {
            HttpShare::Rules(grants.http.iter().filter_map(|r| r.parse().ok()).collect())
        };
        Ok(DepContext {
            wasi,
            env,
            http,
            nn: grants.nn.iter().filter(|m| app.nn.models.contains_key(*m)).cloned().collect(),
        })
    }
}

/// A store's data that runs composed components.
pub trait HasDeps: WasiView + 'static {
    fn deps(&mut self) -> (&mut DepContexts, &mut ResourceTable);
}

/// Defines, in `linker`, every renamed dependency import `component` has. Imports of an
/// interface wasmbox does not isolate are left for the caller's linker to report as missing.
pub fn add_to_linker<T: HasDeps>(linker: &mut Linker<T>, component: &Component) -> wasmtime::Result<()> {
    let ty = component.component_type();
    for (name, _) in ty.imports(component.engine()) {
        let Some((index, original)) = split_dep_import(name) else { continue };
        let bare = original.split('@').next().unwrap_or(&original).to_string();
        let mut inst = linker.instance(name)?;
        match bare.as_str() {
            "wasi:filesystem/preopens" => {
                inst.func_wrap("get-directories", move |mut store, (): ()| {
                    let (deps, table) = store.data_mut().deps();
                    let Some(dep) = deps.get(index) else {
                        return Ok((Vec::<(Resource<Descriptor>, String)>::new(),));
                    };
                    let mut view = WasiFilesystemCtxView { ctx: dep.wasi.filesystem(), table };
                    Ok((Preopens::get_directories(&mut view)?,))
                })?;
            }
            "wasi:cli/environment" => {
                inst.func_wrap("get-environment", move |mut store, (): ()| {
                    let (deps, _) = store.data_mut().deps();
                    Ok((deps.get(index).map(|d| d.env.clone()).unwrap_or_default(),))
                })?;
                // Arguments and the working directory are the app's; a dependency has none.
                inst.func_wrap("get-arguments", |_, (): ()| Ok((Vec::<String>::new(),)))?;
                inst.func_wrap("initial-cwd", |_, (): ()| Ok((None::<String>,)))?;
            }
            "wasi:sockets/instance-network" => {
                // A network handle grants nothing by itself: creating a socket does.
                inst.func_wrap("instance-network", |mut store, (): ()| {
                    Ok((InstanceNetwork::instance_network(&mut store.data_mut().sockets())?,))
                })?;
            }
            // A dependency's sockets come from its own context: they check addresses against its
            // share of the app's rules for as long as they live.
            "wasi:sockets/tcp-create-socket" => {
                inst.func_wrap("create-tcp-socket", move |mut store, (family,): (IpAddressFamily,)| {
                    let (deps, table) = store.data_mut().deps();
                    let Some(dep) = deps.get(index) else {
                        return Ok((Err::<Resource<TcpSocket>, _>(ErrorCode::AccessDenied),));
                    };
                    let mut view = WasiSocketsCtxView { ctx: dep.wasi.sockets(), table };
                    match TcpCreate::create_tcp_socket(&mut view, family) {
                        Ok(s) => Ok((Ok(s),)),
                        Err(e) => Ok((Err(e.downcast()?),)),
                    }
                })?;
            }
            "wasi:sockets/udp-create-socket" => {
                inst.func_wrap_async("create-udp-socket", move |mut store, (family,): (IpAddressFamily,)| {
                    Box::new(async move {
                        let (deps, table) = store.data_mut().deps();
                        let Some(dep) = deps.get(index) else {
                            return Ok((Err::<Resource<UdpSocket>, _>(ErrorCode::AccessDenied),));
                        };
                        let mut view = WasiSocketsCtxView { ctx: dep.wasi.sockets(), table };
                        match UdpCreate::create_udp_socket(&mut view, family).await {
                            Ok(s) => Ok((Ok(s),)),
                            Err(e) => Ok((Err(e.downcast()?),)),
                        }
                    })
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}
