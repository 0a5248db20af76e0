//! Native inference latency of a model with wasmbox-nn (tract), single thread: the baseline of
//! bench/nn_inference.sh. `latency MODEL RUNS` prints the model's first input, then the median
//! and p90 of RUNS inferences (and before that, how long loading took: parse + optimize) on a zero input of that shape (after 3 warm-up runs), in µs.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use wasmbox_nn::{Session, Tensor};
use wasmbox_nn_onnx::local::load_onnx;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, runs) = (&args[1], args.get(2).and_then(|n| n.parse().ok()).unwrap_or(50usize));
    let bytes = std::fs::read(path).expect("read the model");
    let started = Instant::now();
    let model = load_onnx(&bytes).expect("load the model");
    println!("load_ms {:.2}", started.elapsed().as_secs_f64() * 1000.0);
    let input = &model.inputs()[0];
    let dims: Vec<u32> = input.dims.iter().map(|d| d.unwrap_or(1) as u32).collect();
    let ty = input.ty.expect("a WASI-NN input type");
    println!("input {} {:?} {:?}", input.name, dims, ty);
    let len = ty.byte_len(&dims).unwrap() as usize;
    let mut session = Session::new(model);
    let mut times = Vec::new();
    for i in 0..runs + 3 {
        let started = Instant::now();
        session.set_input(0, Tensor::new(dims.clone(), ty, vec![0; len]).unwrap()).unwrap();
        let out = session.job().unwrap().run(&AtomicBool::new(false)).unwrap();
        std::hint::black_box(out);
        if i >= 3 {
            times.push(started.elapsed().as_micros() as u64);
        }
    }
    times.sort_unstable();
    println!("p50_us {} p90_us {}", times[times.len() / 2], times[times.len() * 9 / 10]);
}
