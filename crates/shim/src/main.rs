//! `containerd-shim-wasmbox-v1`: started by containerd for tasks of runtime `io.containerd.wasmbox.v1`.

use containerd_shim_wasm::shim::{Cli, Config};
use wasmbox_shim::handoff;
use wasmbox_shim::shim::WasmboxShim;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if handoff::is_start(&args) {
        // containerd runs `start` in the task's bundle; see `handoff` for why the plan is written now.
        let written = std::env::current_dir().map_err(anyhow::Error::from).and_then(|dir| handoff::write_plan(&dir));
        if let Err(e) = written {
            eprintln!("containerd-shim-wasmbox-v1: {e:#}");
            std::process::exit(1);
        }
    }
    WasmboxShim::run(Config { default_log_level: "info".into(), ..Config::default() });
}
