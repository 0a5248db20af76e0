//! `wasmbox-nn`: the inference backend process wasmbox starts for WASI-NN
//! (crates/nn-onnx/src/helper.rs). Not meant to be run by hand: its stdin must be the control
//! socket wasmbox hands it (crates/nn/src/control.rs).

fn main() {
    if std::env::args_os().len() > 1 {
        eprintln!("wasmbox-nn: the inference backend of wasmbox; wasmbox starts it, it takes no arguments");
        std::process::exit(2);
    }
    wasmbox_nn_onnx::helper::main();
}
