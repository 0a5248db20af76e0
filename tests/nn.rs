//! WASI-NN (`--nn-model`, `--nn-allow-load`): a real ONNX classifier (crates/nn/testdata/digits,
//! trained on scikit-learn's digits) run by a preview 1 module and a component through `run`,
//! `serve` and the daemon, their logits compared with the backend run natively; hostile calls;
//! grants, caps and the memory limit; a deadline that ends an inference still computing.

mod common;
use common::registry::http;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use wasmbox_test_programs::{HTTP_CLASSIFY_COMPONENT, NN_COMPONENT, NN_MODULE};

const NN: [(&str, &str); 2] = [("module", NN_MODULE), ("component", NN_COMPONENT)];

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/nn/testdata/digits")
}

fn digits() -> String {
    testdata().join("digits.onnx").display().to_string()
}

fn data_grant() -> String {
    format!("{}:/data:ro", testdata().display())
}

/// The logits the backend computes natively for each test image, as the guests print them.
fn native_lines() -> Vec<String> {
    let model = wasmbox_nn_onnx::local::load_onnx(&std::fs::read(digits()).unwrap()).unwrap();
    let images = std::fs::read(testdata().join("test-images.f32")).unwrap();
    let mut session = wasmbox_nn::Session::new(model);
    images
        .chunks(256)
        .map(|image| {
            let t = wasmbox_nn::Tensor::new(vec![1, 64], wasmbox_nn::TensorType::F32, image.to_vec()).unwrap();
            session.set_input(0, t).unwrap();
            let out = session.job().unwrap().run(&AtomicBool::new(false)).unwrap();
            let logits: Vec<f32> = out[0].data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            let best = (0..10).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
            let bits: Vec<String> = logits.iter().map(|l| format!("{:08x}", l.to_bits())).collect();
            format!("{best} {}", bits.join(" "))
        })
        .collect()
}

#[test]
fn modules_and_components_classify_held_out_digits_exactly_as_native_tract() {
    let home = Home::new();
    let labels = std::fs::read(testdata().join("test-labels.u8")).unwrap();
    let native = native_lines();
    for (kind, guest) in NN {
        let model = format!("digits={}", digits());
        let out = home.run(&[
            "run",
            "--nn-model",
            &model,
            "-v",
            &data_grant(),
            guest,
            "classify",
            "digits",
            "/data/test-images.f32",
        ]);
        out.code(0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 100, "{kind}: {out:?}");
        let correct = lines.iter().zip(&labels).filter(|(l, label)| l.starts_with(&format!("{label} "))).count();
        assert!(correct >= 95, "{kind}: {correct} of 100 held-out digits right");
        for (i, (guest_line, native_line)) in lines.iter().zip(&native).enumerate() {
            assert_eq!(guest_line, native_line, "{kind}: image {i}: logits differ from native tract");
        }
    }
}

#[test]
fn hostile_calls_get_errors_and_the_guest_goes_on() {
    let home = Home::new();
    let model = format!("digits={}", digits());
    let expected_module = "ungranted name: not-found
guest-supplied model: unsupported-operation
forged graph handle: invalid-argument
get-output before compute: invalid-argument
compute without input: invalid-argument
wrong dimensions: invalid-argument
length mismatch: invalid-argument
huge dimensions: too-large
unknown tensor type: invalid-argument
wrong tensor type: invalid-argument
input index out of range: invalid-argument
pointer outside memory: invalid-argument
forged context handle: invalid-argument
output buffer too small: too-large
output index out of range: invalid-argument
valid call after all that: ok
";
    let expected_component = "ungranted name: not-found
guest-supplied model: security
compute without input: invalid-argument
wrong dimensions: invalid-argument
length mismatch: invalid-argument
huge dimensions: too-large
wrong tensor type: invalid-argument
bf16 tensor: invalid-argument
unknown input name: invalid-argument
valid call after all that: ok
";
    for ((kind, guest), expected) in NN.iter().zip([expected_module, expected_component]) {
        let out = home.run(&["run", "--nn-model", &model, guest, "errors", "digits"]);
        out.code(0).no_panic();
        assert_eq!(out.stdout, expected, "{kind}: {out:?}");
    }
}

#[test]
fn inspect_names_the_capability_and_its_flags() {
    let home = Home::new();
    for (kind, guest) in NN {
        let out = home.run(&["inspect", guest]);
        out.code(0).stdout_has("wasi-nn      --nn-model NAME=SOURCE, --nn-allow-load[=SIZE]");
        let imports =
            if kind == "module" { "wasi_ephemeral_nn#load_by_name" } else { "wasi:nn/graph@0.2.0-rc-2024-10-28" };
        out.stdout_has(imports);
    }
}

#[test]
fn without_a_grant_a_name_is_not_found() {
    let home = Home::new();
    for (kind, guest) in NN {
        let out = home.run(&["run", "-v", &data_grant(), guest, "classify", "digits", "/data/test-images.f32"]);
        out.code(2).stdout_has("not-found");
        if kind == "component" {
            out.stdout_has("no model named `digits`");
        }
    }
}

#[test]
fn guest_supplied_models_need_the_flag_and_are_capped() {
    let home = Home::new();
    let native_first = native_lines().remove(0);
    for (kind, guest) in NN {
        let refused = if kind == "module" { "unsupported-operation" } else { "security" };
        home.run(&["run", "-v", &data_grant(), guest, "load", "/data/digits.onnx"]).code(2).stdout_has(refused);
        let out = home.run(&["run", "--nn-allow-load", "-v", &data_grant(), guest, "load", "/data/digits.onnx"]);
        out.code(0);
        assert_eq!(out.stdout.trim(), native_first, "{kind}");
        home.run(&["run", "--nn-allow-load=1K", "-v", &data_grant(), guest, "load", "/data/digits.onnx"])
            .code(2)
            .stdout_has("too-large");
        // Bytes that are not a model: an error for the guest, not for the host.
        home.run(&["run", "--nn-allow-load", "-v", &data_grant(), guest, "load", "/data/test-labels.u8"])
            .code(2)
            .stdout_has("invalid-encoding");
    }
}

#[test]
fn models_are_checked_before_the_guest_starts() {
    let home = Home::new();
    home.run(&["run", "--nn-model", "m=/no/such/model.onnx", NN_MODULE, "classify", "m", "x"])
        .code(127)
        .stderr_has("--nn-model m=/no/such/model.onnx: no such model file or image")
        .stderr_has("hint:");
    let not_onnx = testdata().join("make.py").display().to_string();
    home.run(&["run", "--nn-model", &format!("m={not_onnx}"), NN_MODULE, "classify", "m", "x"])
        .code(126)
        .stderr_has("not a loadable ONNX model");
    let model = format!("m={}", digits());
    home.run(&["run", "--nn-model", &model, "--nn-model", &model, NN_MODULE]).code(125).stderr_has("twice");
    home.run(&["run", "--nn-model", "=x", NN_MODULE]).code(125).stderr_has("invalid --nn-model name");
}

/// digits.onnx with a 6 MB doc string appended (field 6 of ModelProto): still a valid model,
/// now bigger than the memory limit the test gives.
fn padded_model(dir: &Path) -> String {
    let mut bytes = std::fs::read(digits()).unwrap();
    let pad = 6 << 20;
    bytes.push(0x32);
    let mut n: u64 = pad;
    while n >= 0x80 {
        bytes.push((n as u8) | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    bytes.extend(std::iter::repeat_n(b'a', pad as usize));
    let path = dir.join("padded.onnx");
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn a_model_bigger_than_the_memory_limit_is_refused_at_load() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let model = format!("digits={}", padded_model(dir.path()));
    for (kind, guest) in NN {
        let args = ["run", "-m", "4M", "--nn-model", &model, "-v", &data_grant(), guest, "classify", "digits"];
        let out = home.run(&[&args[..], &["/data/test-images.f32"]].concat());
        out.code(2).stdout_has("too-large");
        // The same grant under the default limit loads.
        let out = home.run(&[&args[..1], &args[3..], &["/data/test-images.f32"]].concat());
        assert_eq!(out.code, 0, "{kind}: {out:?}");
    }
}

#[test]
fn a_deadline_ends_an_inference_that_is_still_computing() {
    let home = Home::new();
    let heavy = format!("big={}", testdata().join("heavy.onnx").display());
    for (kind, guest) in NN {
        let started = Instant::now();
        home.run(&["run", "--timeout", "1s", "--nn-model", &heavy, guest, "big", "big"])
            .code(137)
            .stderr_has("timeout of 1s reached");
        assert!(started.elapsed() < Duration::from_secs(20), "{kind}: took {:?}", started.elapsed());
    }
}

/// `serve` with `args`, until dropped; returns the address.
struct Serving {
    child: std::process::Child,
    addr: String,
}

impl Serving {
    fn start(home: &Home, args: &[&str]) -> Serving {
        let mut child =
            home.cmd().args(["serve", "--listen", "127.0.0.1:0"]).args(args).stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                break None;
            }
            if let Some(addr) = line.trim().strip_prefix("Serving HTTP on http://").and_then(|s| s.strip_suffix('/')) {
                break Some(addr.to_string());
            }
            seen.push_str(&line);
        };
        match addr {
            Some(addr) => {
                std::thread::spawn(move || for _ in stderr.lines() {});
                Serving { child, addr }
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve ended before listening: {seen}");
            }
        }
    }

    fn classify(&self, path: &str, image: &[u8]) -> (u16, String) {
        let r = http(&self.addr, "POST", path, None, image).unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_with_the_granted_model_by_flag_and_by_route() {
    let home = Home::new();
    let images = std::fs::read(testdata().join("test-images.f32")).unwrap();
    let labels = std::fs::read(testdata().join("test-labels.u8")).unwrap();
    let model = format!("digits={}", digits());
    let server = Serving::start(&home, &["--nn-model", &model, HTTP_CLASSIFY_COMPONENT]);
    for i in 0..5 {
        let (status, body) = server.classify("/", &images[i * 256..(i + 1) * 256]);
        assert_eq!((status, body.trim()), (200, labels[i].to_string().as_str()), "request {i}");
    }
    // A request whose tensor is wrong gets the guest's error answer; the next one is fine.
    let (status, body) = server.classify("/", &images[..100]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("InvalidArgument"), "{body}");
    assert_eq!(server.classify("/", &images[..256]).0, 200);
    drop(server);

    // Per route in wasmbox.toml: only the route granted the model has it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(HTTP_CLASSIFY_COMPONENT, dir.path().join("classify.wasm")).unwrap();
    std::fs::copy(digits(), dir.path().join("digits.onnx")).unwrap();
    std::fs::write(
        dir.path().join("wasmbox.toml"),
        "name = \"digits\"\n\
         [[route]]\npath = \"/with\"\nwasm = \"classify.wasm\"\ngrants = { nn = { digits = \"digits.onnx\" } }\n\
         [[route]]\npath = \"/without\"\nwasm = \"classify.wasm\"\n\
         [[route]]\npath = \"/image\"\nwasm = \"classify.wasm\"\ngrants = { nn = { digits = \"digits-model:1\" } }\n",
    )
    .unwrap();
    home.run(&["build", "-t", "digits-model:1", &digits()]).code(0);
    let server = Serving::start(&home, &[dir.path().to_str().unwrap()]);
    let (status, body) = server.classify("/image", &images[..256]);
    assert_eq!((status, body.trim()), (200, labels[0].to_string().as_str()), "a route granted a model image");
    let (status, body) = server.classify("/with", &images[..256]);
    assert_eq!((status, body.trim()), (200, labels[0].to_string().as_str()));
    let (status, body) = server.classify("/without", &images[..256]);
    assert_eq!(status, 500);
    assert!(body.contains("NotFound"), "{body}");
}

#[test]
fn a_request_whose_inference_runs_past_its_deadline_ends_and_others_keep_going() {
    let home = Home::new();
    let images = std::fs::read(testdata().join("test-images.f32")).unwrap();
    let small = format!("digits={}", digits());
    let heavy = format!("big={}", testdata().join("heavy.onnx").display());
    let server = Serving::start(
        &home,
        &["--timeout", "2s", "--nn-model", &small, "--nn-model", &heavy, HTTP_CLASSIFY_COMPONENT],
    );
    let addr = server.addr.clone();
    let started = Instant::now();
    let big = std::thread::spawn(move || http(&addr, "POST", "/big", None, b"").unwrap().status);
    std::thread::sleep(Duration::from_millis(300));
    // While one inference computes for seconds, other requests are answered as usual.
    for i in 0..20 {
        let sent = Instant::now();
        let (status, _) = server.classify("/", &images[..256]);
        assert_eq!(status, 200, "request {i}");
        assert!(sent.elapsed() < Duration::from_millis(1500), "request {i} took {:?}", sent.elapsed());
    }
    assert_eq!(big.join().unwrap(), 504, "the deadline ends the request still computing");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    // ...and the backend process stops computing it, rather than burn a core for nothing. It
    // stops between two operators, and one 2048x2048 product can take a second on a slow VM, so
    // look for a quiet half second within the next six (the 39 products left would keep a core
    // busy for far longer than that if it never stopped).
    let backend = backends_of(server.child.id());
    assert_eq!(backend.len(), 1, "{backend:?}");
    let mut windows = Vec::new();
    while windows.len() < 12 && windows.last().is_none_or(|&ticks| ticks >= 10) {
        let before = cpu_ticks(backend[0]);
        std::thread::sleep(Duration::from_millis(500));
        windows.push(cpu_ticks(backend[0]) - before);
    }
    assert!(
        windows.last().is_some_and(|&ticks| ticks < 10),
        "the backend kept computing after the deadline: CPU ticks per half second {windows:?}"
    );
    assert_eq!(server.classify("/", &images[..256]).0, 200, "the server goes on");
}

/// User + system CPU time of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let fields = proc_stat(pid).unwrap();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn detached_containers_use_only_their_own_models() {
    let home = Home::new();
    let model = format!("digits={}", digits());
    let data = data_grant();
    let granted = ["run", "-d", "--name", "granted", "--nn-model", &model, "-v", &data, NN_COMPONENT];
    home.run(&[&granted[..], &["classify", "digits", "/data/test-images.f32"]].concat()).code(0);
    let other =
        ["run", "-d", "--name", "other", "-v", &data, NN_COMPONENT, "classify", "digits", "/data/test-images.f32"];
    home.run(&other).code(0);
    let end = Instant::now() + Duration::from_secs(60);
    let exited = |name: &str| home.run(&["ps", "-a"]).stdout.lines().any(|l| l.contains(name) && l.contains("Exited"));
    while !(exited("granted") && exited("other")) {
        assert!(Instant::now() < end, "containers did not end: {:?}", home.run(&["ps", "-a"]));
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = home.run(&["logs", "granted"]);
    assert_eq!(logs.stdout.lines().count(), 100, "{logs:?}");
    assert_eq!(logs.stdout.lines().next(), native_lines().first().map(String::as_str));
    home.run(&["logs", "other"]).stdout_has("not-found");
}

#[test]
fn a_model_image_goes_through_the_registry_and_is_granted_by_reference() {
    let registry = common::registry::Registry::start();
    let home = Home::new();
    let reference = format!("{}/models/digits:1", registry.addr);
    let built = home.run(&["build", "-t", &reference, &digits()]);
    built.code(0).stderr_has("ONNX model");
    let manifest = built.stdout.trim().to_string();
    home.run(&["inspect", &reference])
        .code(0)
        .stdout_has(&format!("format:  model (ONNX, {} bytes)", std::fs::metadata(digits()).unwrap().len()))
        .stdout_has(&format!("--nn-model NAME={reference}"));
    home.run(&["push", &reference]).code(0);
    // Something that is not a model is refused by build before anything is stored.
    let not_onnx = tempfile::tempdir().unwrap();
    let fake = not_onnx.path().join("fake.onnx");
    std::fs::write(&fake, b"not a model").unwrap();
    home.run(&["build", "-t", "fake:1", fake.to_str().unwrap()]).code(126).stderr_has("not a loadable ONNX model");
    let images = home.run(&["images"]);
    assert!(!images.code(0).stdout.contains("fake"), "{images:?}");

    // Elsewhere: pulled by digest, granted by reference, the same logits as the file.
    let other = Home::new();
    let pinned = format!("{}/models/digits@{manifest}", registry.addr);
    other.run(&["pull", &pinned]).code(0);
    let grant = format!("digits={pinned}");
    let out = other.run(&[
        "run",
        "--nn-model",
        &grant,
        "-v",
        &data_grant(),
        NN_MODULE,
        "classify",
        "digits",
        "/data/test-images.f32",
    ]);
    out.code(0);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), native_lines());
    // A model image is not an app.
    other.run(&["run", &pinned]).code(126).stderr_has("is a model image, not an app");
    // Removed, a tag is not found without pulling, and pulled again with the default policy.
    home.run(&["rmi", &reference]).code(0);
    let by_tag = format!("digits={reference}");
    home.run(&["run", "--pull", "never", "--nn-model", &by_tag, NN_MODULE, "classify", "digits", "/x"]).code(127);
    let out = home.run(&[
        "run",
        "--nn-model",
        &by_tag,
        "-v",
        &data_grant(),
        NN_COMPONENT,
        "classify",
        "digits",
        "/data/test-images.f32",
    ]);
    out.code(0);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), native_lines());

    // Under a trust policy that admits nothing, the model image is refused like an app image
    // would be; a model file is outside the policy, as a local .wasm is.
    std::fs::write(home.path().join("policy.json"), r#"{"default":[{"type":"reject"}]}"#).unwrap();
    home.run(&["run", "--pull", "never", "--nn-model", &by_tag, NN_MODULE, "classify", "digits", "/x"])
        .code(126)
        .stderr_has("policy refused");
    let file = format!("digits={}", digits());
    home.run(&[
        "run",
        "--nn-model",
        &file,
        "-v",
        &data_grant(),
        NN_MODULE,
        "classify",
        "digits",
        "/data/test-images.f32",
    ])
    .code(0);
}

#[test]
fn an_app_image_carries_its_own_models() {
    let registry = common::registry::Registry::start();
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    std::fs::create_dir(app.path().join("models")).unwrap();
    std::fs::copy(digits(), app.path().join("models/digits.onnx")).unwrap();
    std::fs::copy(NN_COMPONENT, app.path().join("nn.wasm")).unwrap();
    std::fs::write(
        app.path().join("wasmbox.toml"),
        "name = \"classifier\"\nwasm = \"nn.wasm\"\n[nn]\nmodels = { digits = \"models/digits.onnx\" }\n",
    )
    .unwrap();
    let reference = format!("{}/apps/classifier:1", registry.addr);
    home.run(&["build", "-t", &reference, app.path().to_str().unwrap()]).code(0);
    let classify = ["-v", &data_grant(), &reference, "classify", "digits", "/data/test-images.f32"];
    let out = home.run(&[&["run"][..], &classify].concat());
    out.code(0);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), native_lines(), "no flag needed for the app's own model");
    home.run(&["inspect", &reference])
        .code(0)
        .stdout_has("model:   digits (bundled from models/digits.onnx")
        .stdout_has("wasi-nn");
    home.run(&["push", &reference]).code(0);
    home.run(&["rmi", &reference]).code(0);
    home.run(&["system", "prune", "-f"]).code(0);
    home.run(&["pull", &reference]).code(0);
    let out = home.run(&[&["run"][..], &classify].concat());
    out.code(0);
    assert_eq!(out.stdout.lines().count(), 100);
    // The app's model is not granted to other apps.
    home.run(&["run", "-v", &data_grant(), NN_COMPONENT, "classify", "digits", "/data/test-images.f32"])
        .code(2)
        .stdout_has("not-found");
    // A bundled file that is not a model fails the build, naming it.
    std::fs::write(app.path().join("models/digits.onnx"), b"junk").unwrap();
    home.run(&["build", "-t", "broken:1", app.path().to_str().unwrap()]).code(126).stderr_has("--nn-model digits=");
}

/// The backend processes (`wasmbox-nn`) `pid` started.
fn backends_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let children = std::fs::read_to_string(task.unwrap().path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().map(|c| c.parse::<u32>().unwrap()) {
            let exe = std::fs::read_link(format!("/proc/{child}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "wasmbox-nn") {
                found.push(child);
            }
        }
    }
    found
}

#[test]
fn inference_runs_in_a_backend_process_that_comes_back_after_it_is_killed() {
    let home = Home::new();
    let images = std::fs::read(testdata().join("test-images.f32")).unwrap();
    let labels = std::fs::read(testdata().join("test-labels.u8")).unwrap();
    let model = format!("digits={}", digits());
    let server = Serving::start(&home, &["--nn-model", &model, HTTP_CLASSIFY_COMPONENT]);
    let expect = |i: usize, what: &str| {
        let (status, body) = server.classify("/", &images[i * 256..(i + 1) * 256]);
        assert_eq!((status, body.trim()), (200, labels[i].to_string().as_str()), "{what}");
    };
    expect(0, "before");
    let first = backends_of(server.child.id());
    assert_eq!(first.len(), 1, "one backend process for the server: {first:?}");
    // A model that crashes tract would end that process, never the server: kill it for real.
    // SAFETY: sending SIGKILL to a pid this test just read as the server's child.
    assert_eq!(unsafe { libc::kill(first[0] as i32, libc::SIGKILL) }, 0);
    std::thread::sleep(Duration::from_millis(200));
    for i in 1..4 {
        expect(i, "after the backend was killed: a new one, the model loaded into it again");
    }
    let second = backends_of(server.child.id());
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first);
}

#[test]
fn a_missing_backend_is_a_clear_error() {
    let home = Home::new();
    let model = format!("m={}", digits());
    let mut cmd = home.cmd();
    cmd.env("WASMBOX_NN_BACKEND", "/no/such/wasmbox-nn").args(["run", "--nn-model", &model, NN_MODULE]);
    Out::from(cmd.output().unwrap()).code(126).stderr_has("cannot start the inference backend /no/such/wasmbox-nn");
    // `wasmbox` alone, without `wasmbox-nn` next to it.
    let lonely = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lonely-{}", std::process::id()));
    std::fs::create_dir_all(&lonely).unwrap();
    let exe = lonely.join("wasmbox");
    let _ = std::fs::remove_file(&exe);
    std::fs::hard_link(env!("CARGO_BIN_EXE_wasmbox"), &exe).unwrap();
    let out = Out::from(
        Command::new(&exe)
            .env("WASMBOX_HOME", home.path())
            .env_remove("WASMBOX_NN_BACKEND")
            .args(["run", "--nn-model", &model, NN_MODULE])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    let version = Out::from(Command::new(&exe).env_remove("WASMBOX_NN_BACKEND").arg("version").output().unwrap());
    std::fs::remove_dir_all(&lonely).unwrap();
    out.code(126).stderr_has("`wasmbox-nn` is not installed next to").stderr_has("WASMBOX_NN_BACKEND");
    version.code(0).stdout_has("inference: none: the inference backend `wasmbox-nn` is not installed");
    // Installed as cargo builds it: `version` says which backend `--nn-model` starts.
    let backend = Path::new(env!("CARGO_BIN_EXE_wasmbox-nn")).display().to_string();
    home.run(&["version"]).code(0).stdout_has(&format!("inference: {backend} (WASI-NN backend)"));
}

#[test]
fn the_wasmbox_binary_does_not_carry_tract() {
    // tract is 23 MB and 55,000 relocations at every start: only the backend process has it.
    // Panic locations name the crate's source path in any build, stripped or not.
    let has = |bin: &str| {
        let bytes = std::fs::read(bin).unwrap();
        bytes.windows(11).any(|w| w == b"tract-core-")
    };
    assert!(!has(env!("CARGO_BIN_EXE_wasmbox")), "wasmbox links tract");
    assert!(has(env!("CARGO_BIN_EXE_wasmbox-nn")), "the check would see tract if it were there");
}

#[test]
fn the_backend_api_loads_the_same_bytes_once() {
    // This test process is not next to the backend binary: name it (as packagers can).
    // SAFETY: the one place this test binary sets its environment; it names the backend every
    // wasmbox this binary starts would find anyway.
    unsafe { std::env::set_var("WASMBOX_NN_BACKEND", env!("CARGO_BIN_EXE_wasmbox-nn")) };
    let bytes = std::fs::read(digits()).unwrap();
    let a = wasmbox_nn::load_onnx(&bytes).unwrap();
    let b = wasmbox_nn::load_onnx(&bytes).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(a.inputs()[0].dims, vec![None, Some(64)]);
    let native = native_lines();
    let images = std::fs::read(testdata().join("test-images.f32")).unwrap();
    let mut session = wasmbox_nn::Session::new(a);
    session
        .set_input(
            0,
            wasmbox_nn::Tensor::new(vec![1, 64], wasmbox_nn::TensorType::F32, images[..256].to_vec()).unwrap(),
        )
        .unwrap();
    let out = session.job().unwrap().run(&AtomicBool::new(false)).unwrap();
    let bits: Vec<String> =
        out[0].data().chunks(4).map(|b| format!("{:08x}", u32::from_le_bytes(b.try_into().unwrap()))).collect();
    assert!(native[0].ends_with(&bits.join(" ")), "{} vs {:?}", native[0], bits);
    let e = wasmbox_nn::load_onnx(b"not onnx").unwrap_err();
    assert_eq!(e.kind, wasmbox_nn::ErrorKind::InvalidEncoding, "{e}");
}
