//! The WASI-NN guest: the same program as a preview 1 module (`wasi_ephemeral_nn`) and as a
//! component (`wasi:nn@0.2.0-rc-2024-10-28`).
//!
//! `nn classify NAME FILE`: classifies the 8x8 digit images in FILE (64 f32 each) with the model
//! granted as NAME; one line per image: the predicted class, then the 10 logits as f32 bit
//! patterns in hex (so a test can compare them exactly).
//! `nn load FILE`: the same for the first image of /data/test-images.f32, with a model whose
//! bytes the guest supplies (WASI-NN `load`).
//! `nn errors NAME`: hostile calls, one line each: `CASE: ERROR-KIND`.
//! `nn big NAME`: one compute on a 2048x2048 input (the heavy test model; for deadlines).
//! `nn bench NAME RUNS INPUT D1,D2,...`: RUNS inferences (after 3 warm-up runs) on a zero f32
//! input called INPUT of those dimensions, timed inside the guest (tensor copies included);
//! prints `p50_us N p90_us N` (bench/nn_inference.sh); outputs up to 64 KiB.
//! Exit 0 on success; 2 with `nn error: KIND: MESSAGE` when a call fails where it should not.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    let result = match a(1).as_str() {
        "classify" => classify(&a(2), &a(3)),
        "load" => load(&a(2)),
        "errors" => {
            for (case, outcome) in nn::hostile(&a(2)) {
                println!("{case}: {outcome}");
            }
            Ok(())
        }
        "big" => big(&a(2)),
        "bench" => bench(&a(2), a(3).parse().unwrap_or(20), &a(4), &a(5)),
        other => Err(format!("unknown operation `{other}`")),
    };
    if let Err(e) = result {
        println!("nn error: {e}");
        exit(2);
    }
}

#[cfg(target_env = "p2")]
fn exit(code: u8) -> ! {
    wasip2::cli::exit::exit_with_code(code);
    unreachable!("exit-with-code returned")
}

#[cfg(not(target_env = "p2"))]
fn exit(code: u8) -> ! {
    std::process::exit(code.into())
}

fn classify(name: &str, file: &str) -> Result<(), String> {
    let images = std::fs::read(file).map_err(|e| format!("reading {file}: {e}"))?;
    let graph = nn::load_by_name(name)?;
    for image in images.chunks(64 * 4) {
        print_logits(&nn::infer(&graph, &[1, 64], image, 40)?);
    }
    Ok(())
}

fn load(file: &str) -> Result<(), String> {
    let model = std::fs::read(file).map_err(|e| format!("reading {file}: {e}"))?;
    let images = std::fs::read("/data/test-images.f32").map_err(|e| format!("reading images: {e}"))?;
    let graph = nn::load(&model)?;
    print_logits(&nn::infer(&graph, &[1, 64], &images[..256], 40)?);
    Ok(())
}

fn big(name: &str) -> Result<(), String> {
    let graph = nn::load_by_name(name)?;
    let input = vec![0u8; 2048 * 2048 * 4];
    let out = nn::infer(&graph, &[2048, 2048], &input, input.len())?;
    println!("computed {} bytes", out.len());
    Ok(())
}

fn bench(name: &str, runs: usize, input: &str, dims: &str) -> Result<(), String> {
    let dims: Vec<u32> = dims.split(',').map(|d| d.parse().map_err(|_| format!("bad dimension `{d}`"))).collect::<Result<_, _>>()?;
    let data = vec![0u8; dims.iter().product::<u32>() as usize * 4];
    let graph = nn::load_by_name(name)?;
    let mut times = Vec::new();
    for i in 0..runs + 3 {
        let started = std::time::Instant::now();
        std::hint::black_box(nn::infer_named(&graph, input, &dims, &data, 64 << 10)?);
        if i >= 3 {
            times.push(started.elapsed().as_micros() as u64);
        }
    }
    times.sort_unstable();
    println!("p50_us {} p90_us {}", times[times.len() / 2], times[times.len() * 9 / 10]);
    Ok(())
}

fn print_logits(out: &[u8]) {
    let logits: Vec<f32> = out.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let best = (0..logits.len()).max_by(|&x, &y| logits[x].total_cmp(&logits[y])).unwrap_or(0);
    let bits: Vec<String> = logits.iter().map(|l| format!("{:08x}", l.to_bits())).collect();
    println!("{best} {}", bits.join(" "));
}

#[cfg(not(target_env = "p2"))]
mod nn {
    //! `wasi_ephemeral_nn`, declared by hand from its witx (as wasmtime's own test programs do).
    #[repr(C)]
    struct Tensor {
        dims: *const u32,
        dims_len: u32,
        ty: u8,
        data: *const u8,
        data_len: u32,
    }

    #[repr(C)]
    struct Buf {
        ptr: *const u8,
        len: u32,
    }

    mod raw {
        #[link(wasm_import_module = "wasi_ephemeral_nn")]
        unsafe extern "C" {
            pub fn load(builders: *const super::Buf, len: u32, encoding: u32, target: u32, graph: *mut u32) -> u32;
            pub fn load_by_name(name: *const u8, len: u32, graph: *mut u32) -> u32;
            pub fn init_execution_context(graph: u32, ctx: *mut u32) -> u32;
            pub fn set_input(ctx: u32, index: u32, tensor: *const super::Tensor) -> u32;
            pub fn compute(ctx: u32) -> u32;
            pub fn get_output(ctx: u32, index: u32, out: *mut u8, max: u32, written: *mut u32) -> u32;
        }
    }
    use raw::{compute, get_output, init_execution_context, set_input};

    const ERRNOS: [&str; 9] = [
        "success",
        "invalid-argument",
        "invalid-encoding",
        "missing-memory",
        "busy",
        "runtime-error",
        "unsupported-operation",
        "too-large",
        "not-found",
    ];

    fn check(errno: u32) -> Result<(), String> {
        match errno {
            0 => Ok(()),
            n => Err(ERRNOS.get(n as usize).copied().unwrap_or("unknown").to_string()),
        }
    }

    pub struct Graph(u32);

    pub fn load_by_name(name: &str) -> Result<Graph, String> {
        let mut g = 0;
        check(unsafe { raw::load_by_name(name.as_ptr(), name.len() as u32, &mut g) })?;
        Ok(Graph(g))
    }

    pub fn load(model: &[u8]) -> Result<Graph, String> {
        let buf = Buf { ptr: model.as_ptr(), len: model.len() as u32 };
        let mut g = 0;
        check(unsafe { raw::load(&buf, 1, 1, 0, &mut g) })?;
        Ok(Graph(g))
    }

    fn tensor(dims: &[u32], ty: u8, data: &[u8]) -> Tensor {
        Tensor { dims: dims.as_ptr(), dims_len: dims.len() as u32, ty, data: data.as_ptr(), data_len: data.len() as u32 }
    }

    pub fn infer(graph: &Graph, dims: &[u32], data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
        let mut ctx = 0;
        check(unsafe { init_execution_context(graph.0, &mut ctx) })?;
        check(unsafe { set_input(ctx, 0, &tensor(dims, 1, data)) })?;
        check(unsafe { compute(ctx) })?;
        let mut out = vec![0u8; out_len];
        let mut written = 0;
        check(unsafe { get_output(ctx, 0, out.as_mut_ptr(), out.len() as u32, &mut written) })?;
        out.truncate(written as usize);
        Ok(out)
    }

    pub fn infer_named(graph: &Graph, _input: &str, dims: &[u32], data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
        infer(graph, dims, data, out_len)
    }

    fn outcome(errno: u32) -> String {
        check(errno).err().unwrap_or_else(|| "ok".into())
    }

    pub fn hostile(name: &str) -> Vec<(&'static str, String)> {
        let mut cases = Vec::new();
        let mut g = 0;
        let unknown = "no-such-model";
        cases.push(("ungranted name", outcome(unsafe { raw::load_by_name(unknown.as_ptr(), unknown.len() as u32, &mut g) })));
        let bytes = b"not a model";
        let buf = Buf { ptr: bytes.as_ptr(), len: bytes.len() as u32 };
        cases.push(("guest-supplied model", outcome(unsafe { raw::load(&buf, 1, 1, 0, &mut g) })));
        let mut ctx = 0;
        cases.push(("forged graph handle", outcome(unsafe { init_execution_context(4242, &mut ctx) })));
        let graph = match load_by_name(name) {
            Ok(g) => g,
            Err(e) => return vec![("load granted model", e)],
        };
        check(unsafe { init_execution_context(graph.0, &mut ctx) }).unwrap();
        let image = vec![0u8; 256];
        let mut out = vec![0u8; 64];
        let mut written = 0;
        cases.push(("get-output before compute", outcome(unsafe { get_output(ctx, 0, out.as_mut_ptr(), 64, &mut written) })));
        cases.push(("compute without input", outcome(unsafe { compute(ctx) })));
        cases.push(("wrong dimensions", outcome(unsafe { set_input(ctx, 0, &tensor(&[1, 63], 1, &image[..252])) })));
        cases.push(("length mismatch", outcome(unsafe { set_input(ctx, 0, &tensor(&[1, 64], 1, &image[..100])) })));
        let huge = [u32::MAX, u32::MAX, u32::MAX];
        cases.push(("huge dimensions", outcome(unsafe { set_input(ctx, 0, &tensor(&huge, 1, &image)) })));
        cases.push(("unknown tensor type", outcome(unsafe { set_input(ctx, 0, &tensor(&[1, 64], 77, &image)) })));
        cases.push(("wrong tensor type", outcome(unsafe { set_input(ctx, 0, &tensor(&[1, 64], 4, &image)) })));
        cases.push(("input index out of range", outcome(unsafe { set_input(ctx, 5, &tensor(&[1, 64], 1, &image)) })));
        let wild = Tensor { dims: 0xffff_fff0 as *const u32, dims_len: 4, ty: 1, data: image.as_ptr(), data_len: 256 };
        cases.push(("pointer outside memory", outcome(unsafe { set_input(ctx, 0, &wild) })));
        cases.push(("forged context handle", outcome(unsafe { compute(9999) })));
        check(unsafe { set_input(ctx, 0, &tensor(&[1, 64], 1, &image)) }).unwrap();
        check(unsafe { compute(ctx) }).unwrap();
        cases.push(("output buffer too small", outcome(unsafe { get_output(ctx, 0, out.as_mut_ptr(), 8, &mut written) })));
        cases.push(("output index out of range", outcome(unsafe { get_output(ctx, 3, out.as_mut_ptr(), 64, &mut written) })));
        cases.push(("valid call after all that", outcome(unsafe { get_output(ctx, 0, out.as_mut_ptr(), 64, &mut written) })));
        cases
    }
}

#[cfg(target_env = "p2")]
mod nn {
    wit_bindgen::generate!({
        path: "../../engine/src/nn/spec/wasi-nn.wit",
        world: "ml",
        generate_all,
    });

    use wasi::nn::errors::Error;
    use wasi::nn::graph::{ExecutionTarget, GraphEncoding};
    use wasi::nn::tensor::{Tensor, TensorType};

    pub use wasi::nn::graph::Graph;

    fn code(e: &Error) -> &'static str {
        use wasi::nn::errors::ErrorCode as C;
        match e.code() {
            C::InvalidArgument => "invalid-argument",
            C::InvalidEncoding => "invalid-encoding",
            C::Timeout => "timeout",
            C::RuntimeError => "runtime-error",
            C::UnsupportedOperation => "unsupported-operation",
            C::TooLarge => "too-large",
            C::NotFound => "not-found",
            C::Security => "security",
            C::Unknown => "unknown",
        }
    }

    fn describe(e: Error) -> String {
        format!("{}: {}", code(&e), e.data())
    }

    pub fn load_by_name(name: &str) -> Result<Graph, String> {
        wasi::nn::graph::load_by_name(name).map_err(describe)
    }

    pub fn load(model: &[u8]) -> Result<Graph, String> {
        wasi::nn::graph::load(&[model.to_vec()], GraphEncoding::Onnx, ExecutionTarget::Cpu).map_err(describe)
    }

    pub fn infer(graph: &Graph, dims: &[u32], data: &[u8], _out_len: usize) -> Result<Vec<u8>, String> {
        let ctx = graph.init_execution_context().map_err(describe)?;
        let input = Tensor::new(&dims.to_vec(), TensorType::Fp32, &data.to_vec());
        let name = if dims.len() == 2 && dims[1] == 64 { "pixels" } else { "x" };
        let mut outputs = ctx.compute(vec![(name.to_string(), input)]).map_err(describe)?;
        if outputs.is_empty() {
            return Err("no outputs".into());
        }
        Ok(outputs.remove(0).1.data())
    }

    pub fn infer_named(graph: &Graph, input: &str, dims: &[u32], data: &[u8], _out_len: usize) -> Result<Vec<u8>, String> {
        let ctx = graph.init_execution_context().map_err(describe)?;
        let tensor = Tensor::new(&dims.to_vec(), TensorType::Fp32, &data.to_vec());
        let mut outputs = ctx.compute(vec![(input.to_string(), tensor)]).map_err(describe)?;
        if outputs.is_empty() {
            return Err("no outputs".into());
        }
        Ok(outputs.remove(0).1.data())
    }

    fn kind(r: Result<impl Sized, Error>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => code(&e).to_string(),
        }
    }

    pub fn hostile(name: &str) -> Vec<(&'static str, String)> {
        let mut cases = Vec::new();
        cases.push(("ungranted name", kind(wasi::nn::graph::load_by_name("no-such-model"))));
        cases.push((
            "guest-supplied model",
            kind(wasi::nn::graph::load(&[b"not a model".to_vec()], GraphEncoding::Onnx, ExecutionTarget::Cpu)),
        ));
        let graph = match load_by_name(name) {
            Ok(g) => g,
            Err(e) => return vec![("load granted model", e)],
        };
        let ctx = graph.init_execution_context().unwrap();
        let t = |dims: &[u32], ty, len: usize| Tensor::new(&dims.to_vec(), ty, &vec![0u8; len]);
        let named = |t: Tensor| vec![("pixels".to_string(), t)];
        cases.push(("compute without input", kind(ctx.compute(vec![]))));
        cases.push(("wrong dimensions", kind(ctx.compute(named(t(&[1, 63], TensorType::Fp32, 252))))));
        cases.push(("length mismatch", kind(ctx.compute(named(t(&[1, 64], TensorType::Fp32, 100))))));
        cases.push(("huge dimensions", kind(ctx.compute(named(t(&[u32::MAX, u32::MAX, u32::MAX], TensorType::Fp32, 256))))));
        cases.push(("wrong tensor type", kind(ctx.compute(named(t(&[1, 64], TensorType::I32, 256))))));
        cases.push(("bf16 tensor", kind(ctx.compute(named(t(&[1, 64], TensorType::Bf16, 128))))));
        cases.push(("unknown input name", kind(ctx.compute(vec![("nope".to_string(), t(&[1, 64], TensorType::Fp32, 256))]))));
        cases.push(("valid call after all that", kind(ctx.compute(named(t(&[1, 64], TensorType::Fp32, 256))))));
        cases
    }
}
