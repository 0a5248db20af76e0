//! CRI side by side: wasmbox's shim and runwasi's `containerd-shim-wasmtime-v1` on one private
//! containerd 1.7, driven through CRI as kubelet drives it (tests/fixture/cri.rs), same images.
//!
//! - start: RunPodSandbox → first line in the container's CRI log file, a hello module (the
//!   probe guest). "cold": the first pod of a fresh containerd, so each shim compiles (and
//!   stores its precompiled layer); "warm": later pods. Rounds alternate the runtimes.
//! - memory: N pods at once, each with one idle module (a WASI clock poll); then the PSS and
//!   RSS of the shims and every process they run (zygote, the Wasm container; not the pause
//!   program, the same for both), per pod, and the time until all N containers ran.
//!
//! Where the memory goes: `CRI_BENCH_PS=1` prints each measured process (PSS, RSS, command),
//! `CRI_BENCH_SMAPS=1` the PSS of all measured processes summed per mapping (binary, heap, ...).
//!
//! Not part of the test run: `bench/cri_shims.sh` builds runwasi's shim from a checkout and runs
//! this (as root) with `cargo bench -p wasmbox-shim --bench cri_shims -- --runwasi SHIM`.

#[path = "../tests/fixture/mod.rs"]
#[allow(unused_imports)]
mod fixture;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fixture::cri::{Container, Cri, Pod};
use fixture::{Containerd, Layout, Registry};
use wasmbox_test_programs::{PROBE_MODULE, wat};

struct Args {
    runwasi: PathBuf,
    rounds: usize,
    warm: usize,
    pods: usize,
}

fn args() -> Args {
    let mut a = Args { runwasi: PathBuf::new(), rounds: 5, warm: 5, pods: 50 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--runwasi" => a.runwasi = PathBuf::from(value()),
            "--rounds" => a.rounds = value().parse().unwrap(),
            "--warm" => a.warm = value().parse().unwrap(),
            "--pods" => a.pods = value().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown flag {other}; flags: --runwasi SHIM [--rounds N] [--warm N] [--pods N]"),
        }
    }
    assert!(
        a.runwasi.is_file(),
        "--runwasi must name runwasi's containerd-shim-wasmtime-v1 (bench/cri_shims.sh builds it)"
    );
    a
}

/// The two runtimes: (CRI handler, label in the report).
const RUNTIMES: [(&str, &str); 2] = [("wasmbox", "wasmbox"), ("wasmtime", "runwasi wasmtime")];

struct Node {
    cri: Cri,
    logs: tempfile::TempDir,
    hello: String,
    idle: String,
    ctd: Containerd,
}

/// A failed run shows what containerd and the shims logged.
impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("containerd log:\n{}", self.ctd.log());
        }
    }
}

fn node(registry: &Registry, pause: &str, runwasi: &Path, hello: &str, idle: &str) -> Node {
    let ctd = Containerd::start_cri_with(registry, pause, &[("wasmtime", runwasi)]);
    let mut cri = Cri::connect(&ctd.socket);
    for image in [pause, hello, idle] {
        cri.pull(image, None).unwrap_or_else(|e| panic!("pull {image}: {e}"));
    }
    let logs = tempfile::tempdir().unwrap();
    Node { cri, logs, hello: hello.into(), idle: idle.into(), ctd }
}

/// RunPodSandbox → the first line of the container's log; the pod is removed afterwards.
fn start_to_output(node: &mut Node, handler: &str, n: usize) -> Duration {
    let began = Instant::now();
    let pod = node.cri.run_pod(&format!("start-{n}"), handler, &[], node.logs.path());
    let c =
        Container { name: "hello".into(), image: node.hello.clone(), args: vec!["hello".into()], ..Default::default() };
    let id = node.cri.run(&pod, &c);
    let log = pod.log_dir.join("hello/0.log");
    while !fixture::read(&log).contains('\n') {
        assert!(began.elapsed() < Duration::from_secs(60), "no output from {handler} in 60 s");
        std::thread::sleep(Duration::from_micros(500));
    }
    let took = began.elapsed();
    // As kubelet would: the pod goes once its container has exited (runwasi's unpatched shim kit
    // fails a stop that races the exit).
    node.cri.wait_exited(&id, Duration::from_secs(30));
    node.cri.remove_pod(&pod);
    took
}

/// `pods` pods at once, one idle container each: time until all run, then memory per pod.
fn many(node: &mut Node, handler: &str, pods: usize) -> (Duration, Usage) {
    let socket = node.ctd.socket.clone();
    let barrier = Arc::new(Barrier::new(pods));
    let began = Instant::now();
    let workers: Vec<_> = (0..pods)
        .map(|n| {
            let (socket, barrier, idle, logs) =
                (socket.clone(), barrier.clone(), node.idle.clone(), node.logs.path().to_path_buf());
            let handler = handler.to_string();
            std::thread::spawn(move || {
                let mut cri = Cri::connect(&socket);
                barrier.wait();
                let pod = cri.run_pod(&format!("many-{n}"), &handler, &[], &logs);
                let id = cri.run(&pod, &Container { name: "idle".into(), image: idle, ..Default::default() });
                let deadline = Instant::now() + Duration::from_secs(120);
                while cri.status(&id).state != k8s_cri::v1::ContainerState::ContainerRunning as i32 {
                    assert!(Instant::now() < deadline, "pod {n} never ran");
                    std::thread::sleep(Duration::from_millis(10));
                }
                pod
            })
        })
        .collect();
    let started: Vec<Pod> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let took = began.elapsed();
    // Let lazily touched pages settle before measuring.
    std::thread::sleep(Duration::from_secs(2));
    let usage = usage_of_shims(&node.ctd.socket);
    if let Some(secs) = std::env::var("CRI_BENCH_HOLD").ok().and_then(|s| s.parse().ok()) {
        eprintln!("holding {handler} pods {secs} s");
        std::thread::sleep(Duration::from_secs(secs));
    }
    for pod in &started {
        node.cri.remove_pod(pod);
    }
    (took, usage)
}

#[derive(Default, Clone, Copy)]
struct Usage {
    processes: usize,
    pss_kib: u64,
    rss_kib: u64,
}

/// PSS and RSS of the shims serving the containerd at `socket` (their command lines name it) and
/// of all their descendants (zygote, the Wasm containers) but the pods' pause processes.
fn usage_of_shims(socket: &Path) -> Usage {
    let socket = socket.display().to_string();
    let mut parents = vec![];
    let mut inside = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline =
            String::from_utf8_lossy(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default()).into_owned();
        if cmdline.contains("containerd-shim-") && cmdline.contains(&socket) {
            inside.push(pid);
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid follows the command name, which is in parentheses and may hold spaces.
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest.to_string()) else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid) in &parents {
            if inside.contains(ppid) && !inside.contains(pid) {
                inside.push(*pid);
                grew = true;
            }
        }
    }
    let mut usage = Usage::default();
    let mut by_mapping = vec![];
    let processes = inside.len();
    for pid in inside {
        // The pods' pause processes are the same program under either runtime.
        if std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(b"/pause\0") {
            continue;
        }
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let field = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if std::env::var_os("CRI_BENCH_PS").is_some() {
            show_process(pid, field("Pss:"), field("Rss:"));
        }
        usage.processes += 1;
        usage.pss_kib += field("Pss:");
        usage.rss_kib += field("Rss:");
        if std::env::var_os("CRI_BENCH_SMAPS").is_some() {
            add_pss_by_mapping(pid, &mut by_mapping);
        }
    }
    by_mapping.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (kb, mapping) in by_mapping.iter().take(8) {
        eprintln!("    {kb} kB PSS in {processes} processes: {mapping}");
    }
    usage
}

/// One measured process (CRI_BENCH_PS).
fn show_process(pid: u32, pss: u64, rss: u64) {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmd[..cmd.len().min(60)]).replace('\0', " ");
    eprintln!("{pid} pss {pss} kB rss {rss} kB: {cmd}");
}

/// Adds a process's PSS per mapping (the file's name, [heap], [stack], or [anon]) to `by_mapping`
/// (CRI_BENCH_SMAPS): where the memory goes.
fn add_pss_by_mapping(pid: u32, by_mapping: &mut Vec<(u64, String)>) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut name = String::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: the path (or [heap], [stack]) is the sixth field, if any.
            name = line.split_whitespace().nth(5).unwrap_or("[anon]").to_string();
        } else if let Some(kb) = line.strip_prefix("Pss:").and_then(|v| v.split_whitespace().next()) {
            let kb: u64 = kb.parse().unwrap_or(0);
            match by_mapping.iter_mut().find(|r| r.1 == name) {
                Some(row) => row.0 += kb,
                None => by_mapping.push((kb, name.clone())),
            }
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args = args();
    let registry = Registry::start();
    let pause = fixture::push_pause(&registry, "pause", "3.9");
    let probe = std::fs::read(PROBE_MODULE).unwrap();
    let hello = fixture::push_labelled(&registry, "hello", "v1", Layout::Runwasi, &probe, Some("hello"));
    let idle_wasm = ::wat::parse_file(wat("idle")).unwrap();
    let idle = fixture::push_labelled(&registry, "idle", "v1", Layout::Runwasi, &idle_wasm, Some("idle"));

    let mut cold = [vec![], vec![]];
    let mut warm = [vec![], vec![]];
    for round in 0..args.rounds {
        // Alternate which runtime goes first, so drift hits both alike.
        for i in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let (handler, _) = RUNTIMES[i];
            let mut node = node(&registry, &pause, &args.runwasi, &hello, &idle);
            cold[i].push(start_to_output(&mut node, handler, 0));
            for n in 1..=args.warm {
                warm[i].push(start_to_output(&mut node, handler, n));
            }
            eprintln!("round {round} {handler}: cold {}", ms(*cold[i].last().unwrap()));
        }
    }
    let mut at_once = vec![];
    for (handler, _) in RUNTIMES {
        let mut node = node(&registry, &pause, &args.runwasi, &hello, &idle);
        // One idle pod first, so both runtimes start the N pods from a precompiled module (N
        // shims compiling one new layer at once race to store it; see docs/benchmarks.md).
        many(&mut node, handler, 1);
        let baseline = usage_of_shims(&node.ctd.socket);
        let (took, usage) = many(&mut node, handler, args.pods);
        eprintln!("{handler}: {} pods in {}", args.pods, ms(took));
        at_once.push((took, usage, baseline));
    }

    println!("| measure | wasmbox | runwasi wasmtime | ratio (wasmbox/runwasi) |");
    println!("|---|---|---|---|");
    let row = |name: &str, a: Duration, b: Duration| {
        println!("| {name} | {} | {} | {:.2}x |", ms(a), ms(b), a.as_secs_f64() / b.as_secs_f64());
    };
    row(
        &format!("pod start → first output, cold (median of {})", args.rounds),
        median(cold[0].clone()),
        median(cold[1].clone()),
    );
    row(
        &format!("pod start → first output, warm (median of {})", args.rounds * args.warm),
        median(warm[0].clone()),
        median(warm[1].clone()),
    );
    row(&format!("{} pods at once, until all run", args.pods), at_once[0].0, at_once[1].0);
    let per_pod =
        |u: Usage| (u.pss_kib as f64 / args.pods as f64 / 1024.0, u.rss_kib as f64 / args.pods as f64 / 1024.0);
    let (a, b) = (per_pod(at_once[0].1), per_pod(at_once[1].1));
    println!(
        "| PSS per pod ({} pods: shim, zygote, Wasm container; pause excluded) | {:.2} MiB | {:.2} MiB | {:.2}x |",
        args.pods,
        a.0,
        b.0,
        a.0 / b.0
    );
    println!(
        "| RSS per pod (sum, shared pages counted in each) | {:.2} MiB | {:.2} MiB | {:.2}x |",
        a.1,
        b.1,
        a.1 / b.1
    );
    println!("| processes for {} pods | {} | {} | |", args.pods, at_once[0].1.processes, at_once[1].1.processes);
    println!(
        "\nBefore the {} pods (after one pod came and went): wasmbox {} shim processes, runwasi {}.",
        args.pods, at_once[0].2.processes, at_once[1].2.processes
    );
}
