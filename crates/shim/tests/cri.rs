//! The Kubernetes path: containerd's CRI plugin, driven as kubelet drives it (fixture::cri), runs
//! pods on the `wasmbox` runtime handler. Needs root, like the other containerd tests.

mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use fixture::cri::{Container, Cri, Pod, log_lines};
use fixture::{Containerd, Layout, Registry, push};
use wasmbox_test_programs::{HTTP_PROBE_COMPONENT, PROBE_COMPONENT, PROBE_MODULE, wat};

/// The RuntimeClass handler docs/kubernetes.md configures.
const HANDLER: &str = "wasmbox";

/// A registry with the pause image, a containerd running CRI with the documented config, a
/// client, and a directory for the pods' logs (kubelet's /var/log/pods).
struct Node {
    registry: Registry,
    cri: Cri,
    logs: tempfile::TempDir,
    // Dropped last: containerd ends after every client is gone.
    ctd: Containerd,
}

impl Node {
    fn start() -> Node {
        let registry = Registry::start();
        let pause = fixture::push_pause(&registry, "pause", "3.9");
        let ctd = Containerd::start_cri(&registry, &pause);
        let cri = Cri::connect(&ctd.socket);
        let logs = tempfile::Builder::new().prefix("wbx-pods").tempdir().unwrap();
        Node { registry, cri, logs, ctd }
    }

    fn pod(&mut self, name: &str, annotations: &[(&str, &str)]) -> Pod {
        self.cri.run_pod(name, HANDLER, annotations, self.logs.path())
    }

    /// Pushes `wasm` in `layout` and pulls it through CRI (PullImage) for `pod`.
    fn image(&mut self, pod: &Pod, name: &str, layout: Layout, wasm: &[u8]) -> String {
        self.image_and_id(pod, name, layout, wasm).0
    }

    /// The reference, and the image id CRI gives it.
    fn image_and_id(&mut self, pod: &Pod, name: &str, layout: Layout, wasm: &[u8]) -> (String, String) {
        let image = push(&self.registry, name, "v1", layout, wasm);
        let id = self.cri.pull(&image, Some(pod)).unwrap_or_else(|e| panic!("PullImage {image} ({layout:?}): {e}"));
        assert!(id.starts_with("sha256:"), "PullImage {image} gave {id:?}");
        (image, id)
    }

    /// Runs a container to its end; its status.
    fn run_to_end(&mut self, pod: &Pod, c: &Container) -> k8s_cri::v1::ContainerStatus {
        let id = self.cri.run(pod, c);
        self.cri.wait_exited(&id, Duration::from_secs(60))
    }
}

/// A failed test shows what containerd and the shims logged.
impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("containerd log:\n{}", self.ctd.log());
        }
    }
}

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn wat_bytes(name: &str) -> Vec<u8> {
    ::wat::parse_file(wat(name)).unwrap()
}

fn container(name: &str, image: &str, args: &[&str]) -> Container {
    Container {
        name: name.into(),
        image: image.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

/// The text of a container's CRI log file on one stream, after checking every line's format.
fn logged(pod: &Pod, name: &str, stream: &str) -> String {
    let path = pod.log_dir.join(name).join("0.log");
    log_lines(&path).into_iter().filter(|(s, _)| s == stream).map(|(_, text)| text + "\n").collect()
}

fn exited(status: &k8s_cri::v1::ContainerStatus, code: i32, reason: &str, pod: &Pod) {
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (code, reason),
        "{}: message {:?}; stderr: {}",
        status.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("?"),
        status.message,
        logged(pod, &status.metadata.as_ref().unwrap().name, "stderr")
    );
}

#[test]
fn a_pod_runs_wasm_images_of_all_three_layouts_with_logs_and_exit_reasons() {
    let mut node = Node::start();
    let pod = node.pod("layouts", &[]);
    let (runwasi, runwasi_id) = node.image_and_id(&pod, "runwasi", Layout::Runwasi, &bytes(PROBE_MODULE));
    let (tag, tag_id) = node.image_and_id(&pod, "tag", Layout::Tag, &bytes(PROBE_COMPONENT));
    let compat = node.image(&pod, "compat", Layout::Compat, &bytes(PROBE_COMPONENT));

    // Three Wasm containers in one pod (one shim serves the pod), each with its own log file.
    // A TAG image has no entrypoint in its config, so the pod spec names one (`command`).
    let mut tag_hello = container("tag-hello", &tag, &["hello"]);
    tag_hello.command = vec!["/app.wasm".into()];
    let hellos =
        [container("runwasi-hello", &runwasi, &["hello"]), tag_hello, container("compat-hello", &compat, &["hello"])];
    let ids: Vec<String> = hellos.iter().map(|c| node.cri.run(&pod, c)).collect();
    for (id, c) in ids.iter().zip(&hellos) {
        let status = node.cri.wait_exited(id, Duration::from_secs(60));
        exited(&status, 0, "Completed", &pod);
        assert_eq!(status.log_path, pod.log_dir.join(&c.name).join("0.log").display().to_string());
        assert_eq!(logged(&pod, &c.name, "stdout"), "ok\nhello from a wasmbox guest\n", "{}", c.name);
    }

    // Exit codes and kubelet's reasons: the guest's own code, a trap, the memory limit.
    let status = node.run_to_end(&pod, &container("exit", &runwasi, &["exit", "42"]));
    exited(&status, 42, "Error", &pod);
    let status = node.run_to_end(&pod, &container("trap", &compat, &["panic"]));
    exited(&status, 134, "Error", &pod);
    assert!(logged(&pod, "trap", "stderr").contains("wasmbox:"), "{}", logged(&pod, "trap", "stderr"));
    let (grow, grow_id) = node.image_and_id(&pod, "grow", Layout::Tag, &wat_bytes("grow-memory"));
    let mut limited = container("limited", &grow, &[]);
    limited.command = vec!["/app.wasm".into()];
    limited.memory_limit = Some(64 << 20);
    let status = node.run_to_end(&pod, &limited);
    exited(&status, 137, "OOMKilled", &pod);
    assert!(logged(&pod, "limited", "stderr").contains("memory"), "{}", logged(&pod, "limited", "stderr"));
    // A container the memory limit did not stop is not OOMKilled, even when it allocates.
    let mut roomy = container("roomy", &runwasi, &["hello"]);
    roomy.memory_limit = Some(256 << 20);
    exited(&node.run_to_end(&pod, &roomy), 0, "Completed", &pod);

    // CRI names an image by its config digest (docs/kubernetes.md): TAG images carry their
    // layers' digests in the config and stay apart; runwasi-layout images whose configs are
    // byte-identical (as runwasi's builder writes them) become one image.
    assert_ne!(grow_id, tag_id);
    let (_, other_runwasi_id) = node.image_and_id(&pod, "runwasi-other", Layout::Runwasi, &wat_bytes("hello"));
    assert_eq!(other_runwasi_id, runwasi_id, "CRI told identical configs apart after all");
    node.cri.remove_pod(&pod);
}

/// A Deployment's replicas of a new image start together on a node: every one must run, while
/// only one shim compiles and stores the layer.
#[test]
fn pods_of_a_new_image_started_at_once_all_run() {
    let mut node = Node::start();
    let image = push(&node.registry, "replicas", "v1", Layout::Runwasi, &bytes(PROBE_MODULE));
    node.cri.pull(&image, None).expect("PullImage");
    let socket = node.ctd.socket.clone();
    let logs = node.logs.path().to_path_buf();
    let replicas: Vec<_> = (0..4)
        .map(|n| {
            let (socket, logs, image) = (socket.clone(), logs.clone(), image.clone());
            std::thread::spawn(move || {
                let mut cri = Cri::connect(&socket);
                let pod = cri.run_pod(&format!("replica-{n}"), HANDLER, &[], &logs);
                let id = cri.run(&pod, &container("hello", &image, &["hello"]));
                (cri.wait_exited(&id, Duration::from_secs(60)), pod)
            })
        })
        .collect();
    for replica in replicas {
        let (status, pod) = replica.join().unwrap();
        exited(&status, 0, "Completed", &pod);
        assert_eq!(logged(&pod, "hello", "stdout"), "ok\nhello from a wasmbox guest\n");
        node.cri.remove_pod(&pod);
    }
    let compiled = node.ctd.log().matches("precompiled layer sha256:").count();
    assert_eq!(compiled, 1, "the layer was compiled and stored {compiled} times");
}

#[test]
fn volumes_env_and_pod_annotations_become_the_guests_grants() {
    let mut node = Node::start();
    let port = fixture::pong_server(Duration::from_secs(120));
    let target = format!("127.0.0.1:{port}");
    let granted = node.pod("granted", &[("wasmbox.dev/net-allow", &target), ("other.example/ignored", "x")]);
    let image = node.image(&granted, "grants", Layout::Runwasi, &bytes(PROBE_COMPONENT));
    let data = fixture::host_dir(&[("in.txt", "from the host")]);
    let out = fixture::host_dir(&[]);
    let mounts = vec![
        (data.path().to_path_buf(), "/data".to_string(), true),
        (out.path().to_path_buf(), "/out".to_string(), false),
    ];
    let run = |node: &mut Node, pod: &Pod, name: &str, args: &[&str]| {
        let mut c = container(name, &image, args);
        c.mounts = mounts.clone();
        c.env = vec![("GREETING".into(), "hi there".into())];
        let status = node.run_to_end(pod, &c);
        (status.exit_code, logged(pod, name, "stdout"))
    };

    assert_eq!(run(&mut node, &granted, "read", &["read", "/data/in.txt"]), (0, "ok\nfrom the host\n".into()));
    // The probe exits 3 when WASI refuses the operation.
    let (code, text) = run(&mut node, &granted, "write-ro", &["write", "/data/new.txt", "x"]);
    assert_eq!(code, 3, "wrote into a readOnly volume: {text}");
    assert!(!data.path().join("new.txt").exists());
    assert_eq!(run(&mut node, &granted, "write-rw", &["write", "/out/new.txt", "written"]).0, 0);
    assert_eq!(fixture::read(&out.path().join("new.txt")), "written");
    let (code, env) = run(&mut node, &granted, "env", &["env"]);
    assert_eq!(code, 0);
    assert!(env.contains("GREETING=hi there"), "{env}");
    for leak in [fixture::HOST_SECRET, "WASMBOX_SHIM_PLAN", "KUBERNETES"] {
        assert!(!env.contains(leak), "the guest sees {leak}: {env}");
    }
    // The image's files and the pod's plumbing (/etc/hosts, /dev/shm…) are outside every grant.
    for (n, path) in ["/app.wasm", "/etc/hosts", "/dev/shm"].into_iter().enumerate() {
        let (code, text) = run(&mut node, &granted, &format!("outside-{n}"), &["read", path]);
        assert_eq!(code, 3, "{path} was readable: {text}");
    }

    // The pod's wasmbox.dev/net-allow annotation grants the connection; a pod without it has none.
    assert_eq!(run(&mut node, &granted, "connect", &["connect", &target]), (0, "ok\npong\n".into()));
    let bare = node.pod("bare", &[]);
    let (code, text) = run(&mut node, &bare, "connect", &["connect", &target]);
    assert_eq!(code, 3, "connected without a grant: {text}");
    node.cri.remove_pod(&granted);
    node.cri.remove_pod(&bare);
}

#[test]
fn stop_container_ends_a_running_guest_and_accepts_one_that_already_exited() {
    let mut node = Node::start();
    let pod = node.pod("stops", &[]);
    let spin = node.image(&pod, "spin", Layout::Runwasi, &wat_bytes("loop"));
    let id = node.cri.run(&pod, &container("spin", &spin, &[]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(node.cri.status(&id).state, k8s_cri::v1::ContainerState::ContainerRunning as i32);
    // One shim serves the pod: containerd records the same shim address for its sandbox (pause,
    // run by youki) and its Wasm container.
    let tasks = node.ctd.dir.path().join("state/io.containerd.runtime.v2.task/k8s.io");
    let address = |id: &str| fixture::read(&tasks.join(id).join("address"));
    assert!(address(&pod.id).starts_with("unix://"), "no shim address for the sandbox: {:?}", address(&pod.id));
    assert_eq!(address(&id), address(&pod.id), "the container has a shim of its own");
    let stopping = Instant::now();
    node.cri.stop(&id, 10).expect("StopContainer of a running guest");
    assert!(stopping.elapsed() < Duration::from_secs(5), "SIGTERM took {:?}", stopping.elapsed());
    let status = node.cri.wait_exited(&id, Duration::from_secs(10));
    // Ended by kubelet's SIGTERM: 143, and not mistaken for an out-of-memory end.
    exited(&status, 143, "Error", &pod);
    node.cri.remove(&id);

    // kubelet stops containers that may be ending by themselves; each stop must succeed, like
    // runc's (containerd takes the shim's "not found" as already stopped).
    let hello = node.image(&pod, "hello", Layout::Runwasi, &bytes(PROBE_MODULE));
    for n in 0..8 {
        let name = format!("short-{n}");
        let id = node.cri.run(&pod, &container(&name, &hello, &["hello"]));
        // Staggered so some stops land before the exit, some during, some after.
        std::thread::sleep(Duration::from_millis(n * 15));
        node.cri.stop(&id, 2).unwrap_or_else(|e| panic!("StopContainer {name} racing its exit: {e}"));
        // containerd may answer before its event monitor has recorded the exit (its own
        // race, the same with runc); kubelet reads the status later, and so does this.
        let status = node.cri.wait_exited(&id, Duration::from_secs(10));
        assert!(matches!(status.exit_code, 0 | 143), "{name}: exit {} {}", status.exit_code, status.reason);
        assert_ne!(status.reason, "OOMKilled", "{name}");
        node.cri.remove(&id);
    }
    node.cri.remove_pod(&pod);
}

#[test]
fn an_http_component_serves_in_a_pod_and_removing_the_pod_leaves_nothing() {
    let mut node = Node::start();
    let listen = format!("127.0.0.1:{}", fixture::free_port());
    // The registry on loopback doubles as the one upstream the pod may call.
    let upstream = node.registry.addr.clone();
    let pod = node.pod("web", &[("wasmbox.dev/http-listen", &listen), ("wasmbox.dev/http-allow", &upstream)]);
    let image = node.image(&pod, "web", Layout::Runwasi, &bytes(HTTP_PROBE_COMPONENT));
    let id = node.cri.run(&pod, &container("web", &image, &[]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = None;
    while Instant::now() < deadline && answer.is_none() {
        answer = fixture::registry::http(&listen, "GET", "/", None, &[]).ok();
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = answer.unwrap_or_else(|| panic!("nothing answered on {listen}; containerd log:\n{}", node.ctd.log()));
    assert_eq!(answer.status, 200);
    assert!(!answer.body.is_empty());
    // Outbound wasi:http: the annotation's destination only.
    let fetch = |url: &str| {
        let r = fixture::registry::http_with_headers(&listen, "GET", "/fetch", &[("x-fetch-url", url)], b"").unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    };
    let (status, body) = fetch(&format!("http://{upstream}/v2/"));
    assert_eq!(status, 200, "the allowed upstream: {body}");
    let (status, body) = fetch("http://127.0.0.1:9/");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(node.cri.status(&id).state, k8s_cri::v1::ContainerState::ContainerRunning as i32);
    // One shim serves the pod: containerd records the same shim address for its sandbox (pause,
    // run by youki) and its Wasm container.
    let tasks = node.ctd.dir.path().join("state/io.containerd.runtime.v2.task/k8s.io");
    let address = |id: &str| fixture::read(&tasks.join(id).join("address"));
    assert!(address(&pod.id).starts_with("unix://"), "no shim address for the sandbox: {:?}", address(&pod.id));
    assert_eq!(address(&id), address(&pod.id), "the container has a shim of its own");

    // Deleting the pod: kubelet's StopPodSandbox (which stops its containers) and RemovePodSandbox.
    node.cri.remove_pod(&pod);
    assert_eq!(node.cri.listed(), (vec![], vec![]), "CRI still lists the pod's containers or sandbox");
    assert!(std::net::TcpStream::connect(&listen).is_err(), "{listen} still open");
    let youki = Path::new("/run/containerd/wasmbox/k8s.io");
    for left in [youki.join(&id), youki.join(&pod.id)] {
        assert!(!left.exists(), "{} is left behind", left.display());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shims_of(&node.ctd.socket).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(shims_of(&node.ctd.socket), Vec::<u32>::new(), "the pod's shim is still running");
}

/// Pids of wasmbox shims serving this containerd (their command line names its socket).
fn shims_of(socket: &Path) -> Vec<u32> {
    let socket = socket.display().to_string();
    let mut pids = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("containerd-shim-wasmbox-v1") && cmdline.contains(&socket) {
            pids.push(pid);
        }
    }
    pids
}

/// The RuntimeClass and Deployment of docs/kubernetes.md, as kubelet would turn them into CRI
/// calls (with an `http-listen` annotation added: a host-network pod must not take the node's
/// port 8080).
#[test]
fn the_documented_runtimeclass_and_deployment_run_through_cri() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/kubernetes.md")).unwrap();
    let (_, after) = doc.split_once("<!-- cri-deployment -->").expect("the marked Deployment");
    let yaml = after.split_once("```yaml\n").and_then(|(_, b)| b.split_once("```")).unwrap().0;
    let objects: Vec<serde_yaml::Value> =
        serde_yaml::Deserializer::from_str(yaml).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let kind = |k: &str| objects.iter().find(|o| o["kind"] == k).unwrap_or_else(|| panic!("no {k} in the doc"));
    let (class, deployment) = (kind("RuntimeClass"), kind("Deployment"));
    let handler = class["handler"].as_str().unwrap();
    assert_eq!(deployment["spec"]["template"]["spec"]["runtimeClassName"], class["metadata"]["name"]);
    assert!(
        fixture::documented_cri_runtimes().contains(&format!("runtimes.{handler}]")),
        "the RuntimeClass handler {handler} has no runtime table in the documented config"
    );
    let template = &deployment["spec"]["template"];
    let spec = &template["spec"]["containers"][0];
    let mut annotations: Vec<(String, String)> = template["metadata"]["annotations"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap().to_string()))
        .collect();
    let listen = format!("127.0.0.1:{}", fixture::free_port());
    annotations.push(("wasmbox.dev/http-listen".into(), listen.clone()));
    let memory = spec["resources"]["limits"]["memory"].as_str().unwrap();
    let memory: i64 = memory.strip_suffix("Mi").expect("a limit in Mi").parse::<i64>().unwrap() << 20;
    let mount = &spec["volumeMounts"][0];
    let config = fixture::host_dir(&[("greeting", "hi")]);

    let mut node = Node::start();
    let annotations: Vec<(&str, &str)> = annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let pod =
        node.cri.run_pod(deployment["metadata"]["name"].as_str().unwrap(), handler, &annotations, node.logs.path());
    let image = node.image(&pod, "hello", Layout::Runwasi, &bytes(HTTP_PROBE_COMPONENT));
    let c = Container {
        name: spec["name"].as_str().unwrap().into(),
        image,
        command: spec["command"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect(),
        mounts: vec![(
            config.path().to_path_buf(),
            mount["mountPath"].as_str().unwrap().into(),
            mount["readOnly"].as_bool().unwrap(),
        )],
        memory_limit: Some(memory),
        ..Default::default()
    };
    let id = node.cri.run(&pod, &c);
    let get = |path: &str, headers: &[(&str, &str)]| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match fixture::registry::http_with_headers(&listen, "GET", path, headers, b"") {
                Ok(r) => return (r.status, String::from_utf8_lossy(&r.body).into_owned()),
                Err(e) => assert!(Instant::now() < deadline, "nothing answered on {listen}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(get("/", &[]).0, 200);
    // http-allow names api.example.com only: anything else is refused.
    let (status, body) = get("/fetch", &[("x-fetch-url", "http://127.0.0.1:9/")]);
    assert_eq!((status, body.contains("HttpRequestDenied")), (502, true), "{body}");
    // The memory limit bounds each request's instance; the server goes on.
    let (status, _) = get("/bomb", &[]);
    assert_eq!(status, 500, "an allocation bomb under a {memory}-byte limit");
    assert_eq!(get("/", &[]).0, 200);
    assert_eq!(node.cri.status(&id).state, k8s_cri::v1::ContainerState::ContainerRunning as i32);
    node.cri.remove_pod(&pod);
}
