//! containerd-shim-wasmbox-v1 against a real containerd: `ctr run --runtime io.containerd.wasmbox.v1`.

mod fixture;

#[allow(unused_imports)]
use std::time::{Duration, Instant};

use fixture::{Containerd, Layout, Registry, push};
#[allow(unused_imports)]
use wasmbox_test_programs::{HTTP_HELLO_COMPONENT, PROBE_COMPONENT, PROBE_MODULE, wat};

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn wat_bytes(name: &str) -> Vec<u8> {
    ::wat::parse_file(wat(name)).unwrap()
}

#[test]
fn modules_and_components_in_two_layouts_print_and_exit() {
    let ctd = Containerd::start();
    let registry = Registry::start();
    for (layout, guest, name) in [
        (Layout::Runwasi, PROBE_MODULE, "runwasi-module"),
        (Layout::Runwasi, PROBE_COMPONENT, "runwasi-component"),
        (Layout::Compat, PROBE_MODULE, "compat-module"),
        (Layout::Compat, PROBE_COMPONENT, "compat-component"),
    ] {
        let image = push(&registry, name, "v1", layout, &bytes(guest));
        ctd.pull(&image);
        ctd.run(&[], &image, &["/app.wasm", "hello"]).code(0).stdout_has("hello from a wasmbox guest");
        ctd.run(&[], &image, &["/app.wasm", "args", "a", "b c"]).code(0).stdout_has("a b c");
        ctd.run(&[], &image, &["/app.wasm", "exit", "42"]).code(42);
        // A trap is the guest's failure, with wasmbox's code and a line on the container's stderr.
        ctd.run(&[], &image, &["/app.wasm", "panic"]).code(134).stderr_has("wasmbox:");
    }
}
