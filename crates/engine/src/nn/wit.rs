//! `wasi:nn@0.2.0-rc-2024-10-28` for components: graphs, tensors, execution contexts and
//! errors as resources in the store's resource table (which caps how many a guest may hold).
//!
//! A tensor's constructor cannot fail in this interface, so it keeps what the guest gave and
//! `compute` checks it (shape, length, type) and answers with an error resource. Tensor bytes
//! are charged to the container's memory when made; past the limit the container stops with
//! 137 (the constructor has no other way to refuse).

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use wasmbox_nn::{ErrorKind, NnError, Session, Tensor, TensorType};

use super::state::{Graph, NnState, compute};

mod generated {
    wasmtime::component::bindgen!({
        world: "ml",
        path: "src/nn/spec/wasi-nn.wit",
        with: {
            "wasi:nn/graph.graph": crate::nn::state::Graph,
            "wasi:nn/tensor.tensor": crate::nn::wit::GuestTensor,
            "wasi:nn/inference.graph-execution-context": crate::nn::wit::Context,
            "wasi:nn/errors.error": wasmbox_nn::NnError,
        },
        imports: {
            "wasi:nn/graph.load": async | trappable,
            "wasi:nn/inference.[method]graph-execution-context.compute": async | trappable,
            default: trappable,
        },
    });
}

use generated::wasi::nn as api;

/// A tensor as the guest made it (checked at `compute`), with what it is charged.
pub struct GuestTensor {
    dims: Vec<u32>,
    ty: TensorType,
    data: Vec<u8>,
    charged: u64,
}

/// An execution context of a component: the graph it runs. Inputs come with each `compute`
/// and are not kept after it.
pub struct Context {
    model: std::sync::Arc<wasmbox_nn::Model>,
}

/// What the component glue works on: the store's WASI-NN state and its resource table.
pub(crate) struct NnView<'a> {
    pub state: &'a mut NnState,
    pub table: &'a mut ResourceTable,
}

struct HasNn;

impl HasData for HasNn {
    type Data<'a> = NnView<'a>;
}

/// Adds `wasi:nn` to a component linker; `view` finds the state in the store's data.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> NnView<'_>,
) -> wasmtime::Result<()> {
    api::graph::add_to_linker::<T, HasNn>(linker, view)?;
    api::tensor::add_to_linker::<T, HasNn>(linker, view)?;
    api::inference::add_to_linker::<T, HasNn>(linker, view)?;
    api::errors::add_to_linker::<T, HasNn>(linker, view)?;
    Ok(())
}

type Answer<T> = wasmtime::Result<Result<T, Resource<NnError>>>;

impl NnView<'_> {
    /// Puts `e` in the table as the error resource the guest receives.
    fn fail<T>(&mut self, e: NnError) -> Answer<T> {
        tracing::debug!("wasi:nn: {e}");
        Ok(Err(self.table.push(e)?))
    }

    fn push_graph(&mut self, graph: Graph) -> Answer<Resource<Graph>> {
        let charged = graph.model.size();
        match self.table.push(graph) {
            Ok(r) => Ok(Ok(r)),
            Err(e) => {
                self.state.memory.release(charged);
                Err(e.into())
            }
        }
    }
}

impl api::graph::Host for NnView<'_> {
    async fn load(
        &mut self,
        builders: Vec<Vec<u8>>,
        encoding: api::graph::GraphEncoding,
        target: api::graph::ExecutionTarget,
    ) -> Answer<Resource<Graph>> {
        use api::graph::{ExecutionTarget, GraphEncoding};
        let slices: Vec<&[u8]> = builders.iter().map(Vec::as_slice).collect();
        let onnx = matches!(encoding, GraphEncoding::Onnx | GraphEncoding::Autodetect);
        let cpu = matches!(target, ExecutionTarget::Cpu);
        match self.state.load_bytes(&slices, onnx, cpu).await {
            Ok(graph) => self.push_graph(graph),
            Err(e) => self.fail(e),
        }
    }

    fn load_by_name(&mut self, name: String) -> Answer<Resource<Graph>> {
        match self.state.load_by_name(&name) {
            Ok(graph) => self.push_graph(graph),
            Err(e) => self.fail(e),
        }
    }
}

impl api::graph::HostGraph for NnView<'_> {
    fn init_execution_context(&mut self, graph: Resource<Graph>) -> Answer<Resource<Context>> {
        let model = self.table.get(&graph)?.model.clone();
        Ok(Ok(self.table.push(Context { model })?))
    }

    fn drop(&mut self, graph: Resource<Graph>) -> wasmtime::Result<()> {
        let graph = self.table.delete(graph)?;
        self.state.release_graph(graph);
        Ok(())
    }
}

impl api::tensor::Host for NnView<'_> {}

impl api::tensor::HostTensor for NnView<'_> {
    fn new(
        &mut self,
        dims: Vec<u32>,
        ty: api::tensor::TensorType,
        data: Vec<u8>,
    ) -> wasmtime::Result<Resource<GuestTensor>> {
        let bytes = data.len() as u64 + 4 * dims.len() as u64;
        if !self.state.memory.try_charge(bytes) {
            self.state.memory.mark_hit();
            return Err(wasmtime::format_err!(
                "a wasi:nn tensor of {bytes} bytes does not fit in the container's memory limit"
            ));
        }
        let tensor = GuestTensor { dims, ty: tensor_type(ty), data, charged: bytes };
        match self.table.push(tensor) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.state.memory.release(bytes);
                Err(e.into())
            }
        }
    }

    fn dimensions(&mut self, tensor: Resource<GuestTensor>) -> wasmtime::Result<Vec<u32>> {
        Ok(self.table.get(&tensor)?.dims.clone())
    }

    fn ty(&mut self, tensor: Resource<GuestTensor>) -> wasmtime::Result<api::tensor::TensorType> {
        Ok(wit_type(self.table.get(&tensor)?.ty))
    }

    fn data(&mut self, tensor: Resource<GuestTensor>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&tensor)?.data.clone())
    }

    fn drop(&mut self, tensor: Resource<GuestTensor>) -> wasmtime::Result<()> {
        let tensor = self.table.delete(tensor)?;
        self.state.memory.release(tensor.charged);
        Ok(())
    }
}

impl api::inference::Host for NnView<'_> {}

impl api::inference::HostGraphExecutionContext for NnView<'_> {
    async fn compute(
        &mut self,
        context: Resource<Context>,
        inputs: Vec<(String, Resource<GuestTensor>)>,
    ) -> Answer<Vec<(String, Resource<GuestTensor>)>> {
        // The tensors are the guest's to give: they leave its table whatever happens next, and
        // stay charged until the computation that copied them is over.
        let mut given = Vec::with_capacity(inputs.len());
        let mut held = 0;
        for (name, tensor) in inputs {
            let tensor = self.table.delete(tensor)?;
            held += tensor.charged;
            given.push((name, tensor));
        }
        let model = self.table.get(&context)?.model.clone();
        let job = {
            let mut session = Session::new(model.clone());
            let set = || -> Result<_, NnError> {
                for (name, t) in given {
                    let index = session.input_index(&name)?;
                    let tensor = Tensor::new(t.dims, t.ty, t.data)?;
                    session.set_input(index, tensor)?;
                }
                session.job()
            };
            set()
        };
        let outputs = match job {
            Ok(job) => compute(job).await,
            Err(e) => Err(e),
        };
        self.state.memory.release(held);
        let outputs = match outputs {
            Ok(outputs) => outputs,
            Err(e) => return self.fail(e),
        };
        let names = model.outputs().to_vec();
        let mut answer = Vec::with_capacity(outputs.len());
        for (name, tensor) in names.into_iter().zip(outputs) {
            let charged = match self.state.charge_tensor(&tensor) {
                Ok(c) => c,
                Err(e) => {
                    for (_, made) in answer {
                        self.drop_tensor(made)?;
                    }
                    return self.fail(e);
                }
            };
            let (dims, ty) = (tensor.dims().to_vec(), tensor.ty());
            let made = GuestTensor { dims, ty, data: tensor.into_data(), charged };
            match self.table.push(made) {
                Ok(r) => answer.push((name, r)),
                Err(e) => {
                    self.state.memory.release(charged);
                    return Err(e.into());
                }
            }
        }
        Ok(Ok(answer))
    }

    fn drop(&mut self, context: Resource<Context>) -> wasmtime::Result<()> {
        self.table.delete(context)?;
        Ok(())
    }
}

impl NnView<'_> {
    fn drop_tensor(&mut self, tensor: Resource<GuestTensor>) -> wasmtime::Result<()> {
        api::tensor::HostTensor::drop(self, tensor)
    }
}

impl api::errors::Host for NnView<'_> {}

impl api::errors::HostError for NnView<'_> {
    fn code(&mut self, error: Resource<NnError>) -> wasmtime::Result<api::errors::ErrorCode> {
        use api::errors::ErrorCode;
        Ok(match self.table.get(&error)?.kind {
            ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
            ErrorKind::InvalidEncoding => ErrorCode::InvalidEncoding,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::TooLarge => ErrorCode::TooLarge,
            ErrorKind::RuntimeError => ErrorCode::RuntimeError,
            ErrorKind::Unsupported => ErrorCode::UnsupportedOperation,
            ErrorKind::Denied => ErrorCode::Security,
            ErrorKind::Cancelled => ErrorCode::Timeout,
        })
    }

    fn data(&mut self, error: Resource<NnError>) -> wasmtime::Result<String> {
        Ok(self.table.get(&error)?.message.clone())
    }

    fn drop(&mut self, error: Resource<NnError>) -> wasmtime::Result<()> {
        self.table.delete(error)?;
        Ok(())
    }
}

fn tensor_type(ty: api::tensor::TensorType) -> TensorType {
    use api::tensor::TensorType as T;
    match ty {
        T::Fp16 => TensorType::F16,
        T::Fp32 => TensorType::F32,
        T::Fp64 => TensorType::F64,
        T::Bf16 => TensorType::Bf16,
        T::U8 => TensorType::U8,
        T::I32 => TensorType::I32,
        T::I64 => TensorType::I64,
    }
}

fn wit_type(ty: TensorType) -> api::tensor::TensorType {
    use api::tensor::TensorType as T;
    match ty {
        TensorType::F16 => T::Fp16,
        TensorType::F32 => T::Fp32,
        TensorType::F64 => T::Fp64,
        TensorType::Bf16 => T::Bf16,
        TensorType::U8 => T::U8,
        TensorType::I32 => T::I32,
        TensorType::I64 => T::I64,
    }
}

/// A composed component's dependencies load models through their own copy of `wasi:nn/graph`
/// (`deps`): by name only the models the composition shared with them, and never guest bytes.
pub(crate) fn add_dep_graphs<T: crate::deps::HasDeps>(
    linker: &mut Linker<T>,
    component: &wasmtime::component::Component,
    view: fn(&mut T) -> NnView<'_>,
) -> wasmtime::Result<()> {
    use wasmtime::component::ResourceType;
    for (name, _) in component.component_type().imports(component.engine()) {
        let Some((index, original)) = crate::deps::split_dep_import(name) else { continue };
        if original.split('@').next() != Some("wasi:nn/graph") {
            continue;
        }
        let mut inst = linker.instance(name)?;
        inst.resource("graph", ResourceType::host::<Graph>(), move |mut store, rep| {
            api::graph::HostGraph::drop(&mut view(store.data_mut()), Resource::new_own(rep))
        })?;
        inst.func_wrap("[method]graph.init-execution-context", move |mut store, (graph,): (Resource<Graph>,)| {
            Ok((api::graph::HostGraph::init_execution_context(&mut view(store.data_mut()), graph)?,))
        })?;
        inst.func_wrap(
            "load",
            move |mut store, (_, _, _): (Vec<Vec<u8>>, api::graph::GraphEncoding, api::graph::ExecutionTarget)| {
                let denied = NnError::new(ErrorKind::Denied, "a dependency cannot load guest-supplied models");
                Ok((view(store.data_mut()).fail::<Resource<Graph>>(denied)?,))
            },
        )?;
        inst.func_wrap("load-by-name", move |mut store, (model,): (String,)| {
            let host = store.data_mut();
            if !host.deps().0.may_load(index, &model) {
                let denied = NnError::new(
                    ErrorKind::NotFound,
                    format!("model `{model}` was not shared with this dependency (grant it: nn:{model})"),
                );
                return Ok((view(host).fail::<Resource<Graph>>(denied)?,));
            }
            Ok((api::graph::Host::load_by_name(&mut view(host), model)?,))
        })?;
    }
    Ok(())
}
