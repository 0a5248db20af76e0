//! `wasi_ephemeral_nn` for WASI preview 1 modules: the witx ABI Wasmtime 48 implements, on
//! wiggle's generated glue (pointers checked against the guest's memory), with every failure an
//! errno — a bad pointer too — and never a host panic.

use std::collections::HashMap;

use wasmbox_nn::{ErrorKind, NnError, Session, Tensor, TensorType};
use wiggle::{GuestError, GuestMemory, GuestPtr};

use super::state::{Graph, NnState, compute};

mod generated {
    use super::P1Error;

    wiggle::from_witx!({
        witx: ["src/nn/spec/wasi-nn.witx"],
        async: { wasi_ephemeral_nn::{load, compute} },
        errors: { nn_errno => P1Error },
    });
}

use generated::types;

/// Adds `wasi_ephemeral_nn` to a module linker. `set_input` is our own glue: wiggle traps on a
/// tensor type tag it does not know, and WASI-NN answers that with `invalid_argument`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::Linker<T>,
    get: fn(&mut T) -> &mut NnState,
) -> wasmtime::Result<()> {
    generated::wasi_ephemeral_nn::add_to_linker(linker, get)?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_ephemeral_nn",
        "set_input",
        move |mut caller: wasmtime::Caller<'_, T>, context: i32, index: i32, tensor: i32| -> wasmtime::Result<i32> {
            let Some(wasmtime::Extern::Memory(memory)) = caller.get_export("memory") else {
                wasmtime::bail!("missing required memory export");
            };
            let (bytes, host) = memory.data_and_store_mut(&mut caller);
            let state = get(host);
            let result = read_tensor(bytes, tensor as u32)
                .and_then(|(dims, ty, data)| state.set_input_checked(context as u32, index as u32, dims, ty, data));
            let errno = match result {
                Ok(()) => types::NnErrno::Success,
                Err(e) => types::UserErrorConversion::nn_errno_from_p1_error(state, P1Error::Nn(e))?,
            };
            Ok(errno as i32)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A tensor record as read from guest memory: dimensions, type (`None`: an unknown tag), data.
type RawTensor<'a> = (Vec<u32>, Option<TensorType>, &'a [u8]);

/// Reads the witx `tensor` record at `at`: dimensions (pointer, length), type tag (u8), data
/// (pointer, length) — 20 bytes, every pointer checked against the memory's size.
fn read_tensor(memory: &[u8], at: u32) -> Result<RawTensor<'_>, NnError> {
    let fault = || NnError::invalid("a pointer points outside the guest's memory");
    let slice = |ptr: u32, len: u64| -> Result<&[u8], NnError> {
        let start = ptr as usize;
        let end = (ptr as u64).checked_add(len).filter(|e| *e <= memory.len() as u64).ok_or_else(fault)?;
        Ok(&memory[start..end as usize])
    };
    let record = slice(at, 20)?;
    let word = |o: usize| u32::from_le_bytes(record[o..o + 4].try_into().expect("4 bytes"));
    let (dims_ptr, dims_len, tag, data_ptr, data_len) = (word(0), word(4), record[8], word(12), word(16));
    if dims_len as usize > wasmbox_nn::MAX_RANK {
        return Err(NnError::invalid(format!(
            "tensor has {dims_len} dimensions; at most {} are supported",
            wasmbox_nn::MAX_RANK
        )));
    }
    let dims = slice(dims_ptr, u64::from(dims_len) * 4)?
        .chunks(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let ty = match tag {
        0 => Some(TensorType::F16),
        1 => Some(TensorType::F32),
        2 => Some(TensorType::F64),
        3 => Some(TensorType::U8),
        4 => Some(TensorType::I32),
        5 => Some(TensorType::I64),
        _ => None,
    };
    Ok((dims, ty, slice(data_ptr, u64::from(data_len))?))
}

/// What a call failed with: a backend/usage error, or a pointer the guest got wrong.
#[derive(Debug)]
pub(crate) enum P1Error {
    Nn(NnError),
    Guest(GuestError),
}

impl From<NnError> for P1Error {
    fn from(e: NnError) -> Self {
        P1Error::Nn(e)
    }
}

impl From<GuestError> for P1Error {
    fn from(e: GuestError) -> Self {
        P1Error::Guest(e)
    }
}

impl wiggle::GuestErrorType for types::NnErrno {
    fn success() -> Self {
        types::NnErrno::Success
    }
}

impl types::UserErrorConversion for NnState {
    fn nn_errno_from_p1_error(&mut self, e: P1Error) -> wiggle::error::Result<types::NnErrno> {
        tracing::debug!("wasi_ephemeral_nn: {e:?}");
        Ok(match e {
            P1Error::Guest(g) => {
                tracing::debug!("wasi_ephemeral_nn: the guest passed a bad pointer: {g}");
                types::NnErrno::InvalidArgument
            }
            P1Error::Nn(e) => match e.kind {
                ErrorKind::InvalidArgument => types::NnErrno::InvalidArgument,
                ErrorKind::InvalidEncoding => types::NnErrno::InvalidEncoding,
                ErrorKind::NotFound => types::NnErrno::NotFound,
                ErrorKind::TooLarge => types::NnErrno::TooLarge,
                ErrorKind::Unsupported | ErrorKind::Denied => types::NnErrno::UnsupportedOperation,
                ErrorKind::RuntimeError | ErrorKind::Cancelled => types::NnErrno::RuntimeError,
            },
        })
    }
}

/// A module's graph and execution-context handles: small integers, at most `max` of each.
pub(crate) struct Handles {
    max: usize,
    next: u32,
    graphs: HashMap<u32, Graph>,
    contexts: HashMap<u32, Context>,
}

/// An execution context: its inputs, and its outputs (with what they are charged) once computed.
struct Context {
    session: Session,
    charged_inputs: Vec<u64>,
    outputs: Option<(Vec<Tensor>, u64)>,
}

impl Handles {
    pub fn new(max: usize) -> Handles {
        Handles { max, next: 1, graphs: HashMap::new(), contexts: HashMap::new() }
    }

    fn id(&mut self, in_use: usize) -> Result<u32, NnError> {
        if in_use >= self.max {
            return Err(NnError::new(ErrorKind::TooLarge, format!("at most {} handles of a kind", self.max)));
        }
        let id = self.next;
        self.next = self.next.checked_add(1).ok_or_else(|| NnError::new(ErrorKind::TooLarge, "out of handles"))?;
        Ok(id)
    }

    fn context(&mut self, id: types::GraphExecutionContext) -> Result<&mut Context, NnError> {
        let id = u32::from(id);
        self.contexts.get_mut(&id).ok_or_else(|| NnError::invalid(format!("{id} is not an execution context handle")))
    }
}

impl NnState {
    /// `set_input` once the guest's record is read: `ty` is `None` for a type tag the
    /// interface does not have.
    fn set_input_checked(
        &mut self,
        context: u32,
        index: u32,
        dims: Vec<u32>,
        ty: Option<TensorType>,
        data: &[u8],
    ) -> Result<(), NnError> {
        self.p1.context(context.into())?;
        let ty = ty.ok_or_else(|| NnError::invalid("unknown tensor type"))?;
        let len = ty.byte_len(&dims)?;
        if data.len() as u64 != len {
            return Err(NnError::invalid(format!(
                "tensor data is {} bytes but dimensions {dims:?} of {ty:?} need {len}",
                data.len()
            )));
        }
        let charged = self.charge(len + 4 * dims.len() as u64, "the tensor")?;
        let memory = self.memory.clone();
        let ctx = self.p1.context(context.into())?;
        match Tensor::new(dims, ty, data.to_vec()).and_then(|t| ctx.session.set_input(index as usize, t)) {
            Ok(_) => {
                memory.release(std::mem::replace(&mut ctx.charged_inputs[index as usize], charged));
                Ok(())
            }
            Err(e) => {
                memory.release(charged);
                Err(e)
            }
        }
    }

    fn insert_graph(&mut self, graph: Graph) -> Result<types::Graph, P1Error> {
        match self.p1.id(self.p1.graphs.len()) {
            Ok(id) => {
                self.p1.graphs.insert(id, graph);
                Ok(id.into())
            }
            Err(e) => {
                self.release_graph(graph);
                Err(e.into())
            }
        }
    }
}

impl generated::wasi_ephemeral_nn::WasiEphemeralNn for NnState {
    async fn load(
        &mut self,
        memory: &mut GuestMemory<'_>,
        builders: types::GraphBuilderArray,
        encoding: types::GraphEncoding,
        target: types::ExecutionTarget,
    ) -> Result<types::Graph, P1Error> {
        let mut buffers = Vec::new();
        for builder in builders.iter() {
            let builder = memory.read(builder?)?;
            buffers.push(memory.as_cow(builder)?.into_owned());
        }
        let slices: Vec<&[u8]> = buffers.iter().map(Vec::as_slice).collect();
        let onnx = matches!(encoding, types::GraphEncoding::Onnx | types::GraphEncoding::Autodetect);
        let cpu = matches!(target, types::ExecutionTarget::Cpu);
        let graph = self.load_bytes(&slices, onnx, cpu).await?;
        self.insert_graph(graph)
    }

    fn load_by_name(&mut self, memory: &mut GuestMemory<'_>, name: GuestPtr<str>) -> Result<types::Graph, P1Error> {
        let name = memory.as_cow_str(name)?.into_owned();
        let graph = NnState::load_by_name(self, &name)?;
        self.insert_graph(graph)
    }

    fn init_execution_context(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        graph: types::Graph,
    ) -> Result<types::GraphExecutionContext, P1Error> {
        let graph = u32::from(graph);
        let model = match self.p1.graphs.get(&graph) {
            Some(g) => g.model.clone(),
            None => return Err(NnError::invalid(format!("{graph} is not a graph handle")).into()),
        };
        let id = self.p1.id(self.p1.contexts.len())?;
        let inputs = model.inputs().len();
        self.p1
            .contexts
            .insert(id, Context { session: Session::new(model), charged_inputs: vec![0; inputs], outputs: None });
        Ok(id.into())
    }

    fn set_input(
        &mut self,
        memory: &mut GuestMemory<'_>,
        context: types::GraphExecutionContext,
        index: u32,
        tensor: &types::Tensor,
    ) -> Result<(), P1Error> {
        // Not reached from guests (`add_to_linker` replaces it with `set_input_raw`), kept so
        // the generated trait is complete.
        let dims = memory.to_vec(tensor.dimensions)?;
        let data = memory.as_cow(tensor.data)?;
        Ok(self.set_input_checked(context.into(), index, dims, Some(tensor_type(tensor.type_)), &data)?)
    }

    async fn compute(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        context: types::GraphExecutionContext,
    ) -> Result<(), P1Error> {
        let job = self.p1.context(context)?.session.job()?;
        let outputs = compute(job).await?;
        let bytes: u64 = outputs.iter().map(Tensor::bytes).sum();
        let previous = self.p1.context(context)?.outputs.take();
        if let Some((_, charged)) = previous {
            self.memory.release(charged);
        }
        let charged = self.charge(bytes, "the outputs")?;
        self.p1.context(context)?.outputs = Some((outputs, charged));
        Ok(())
    }

    fn get_output(
        &mut self,
        memory: &mut GuestMemory<'_>,
        context: types::GraphExecutionContext,
        index: u32,
        out_buffer: GuestPtr<u8>,
        out_buffer_max_size: u32,
    ) -> Result<u32, P1Error> {
        let ctx = self.p1.context(context)?;
        let Some((outputs, _)) = &ctx.outputs else {
            return Err(NnError::invalid("get_output before compute").into());
        };
        let Some(tensor) = outputs.get(index as usize) else {
            return Err(
                NnError::invalid(format!("output index {index} is out of range ({} outputs)", outputs.len())).into()
            );
        };
        let data = tensor.data();
        if data.len() as u64 > u64::from(out_buffer_max_size) {
            return Err(NnError::new(
                ErrorKind::TooLarge,
                format!("the output is {} bytes, the buffer {out_buffer_max_size}", data.len()),
            )
            .into());
        }
        memory.copy_from_slice(data, out_buffer.as_array(data.len() as u32))?;
        Ok(data.len() as u32)
    }
}

fn tensor_type(ty: types::TensorType) -> TensorType {
    match ty {
        types::TensorType::F16 => TensorType::F16,
        types::TensorType::F32 => TensorType::F32,
        types::TensorType::F64 => TensorType::F64,
        types::TensorType::U8 => TensorType::U8,
        types::TensorType::I32 => TensorType::I32,
        types::TensorType::I64 => TensorType::I64,
    }
}
