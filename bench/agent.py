#!/usr/bin/env python3
"""The edge agent (docs/edge.md): its footprint with three small apps, and the time from a tag
move to the new version serving.

A device runs the x86_64 edge build (`scripts/edge-build.sh x86_64`: no compiler) as agent and
daemon, under a policy trusting one key. Three signed images built with `--precompile x86_64`
from the test guests: two `tick` apps (probe module) and one HTTP app (http-probe component,
`-p`, health check `GET /health`). Measured:

- footprint: VmRSS of the agent process 5 s after all three apps run (the apps live in the
  daemon, whose RSS is printed for reference), and the agent's CPU time and context switches
  over a 10 s idle window (poll_interval 30s: no work is expected).
- tag move → serving: per round, a new signed version of the HTTP app is pushed under the same
  tag; the clock starts after `sign` returns, `wasmbox agent sync` is started, and the clock
  stops when `GET /env/VERSION` answers the new version; also when `agent sync` returned (the
  health check passed and the old version was removed). Medians over rounds.

The builder (build, push, sign) is target/release/wasmbox if present, else target/debug/wasmbox
(its speed is outside what is measured). Usage: bench/agent.py [--rounds N] [--stop-timeout 1s]
"""
import argparse, glob, json, os, shutil, statistics, subprocess, tempfile, time, urllib.request

from benchlib import ROOT, free_port, mem_kib, sh, start_registry

EDGE = os.path.join(ROOT, "target/x86_64-unknown-linux-gnu/edge/wasmbox")


def builder():
    for profile in ["release", "debug"]:
        path = os.path.join(ROOT, "target", profile, "wasmbox")
        if os.path.exists(path):
            consts = max(glob.glob(os.path.join(ROOT, f"target/{profile}/build/wasmbox-test-programs-*/out/guests.rs")),
                         key=os.path.getmtime)
            paths = {}
            for line in open(consts):
                paths[line.split(":")[0].replace("pub const ", "").strip()] = line.split('"')[1]
            return path, paths
    raise SystemExit("build wasmbox first (cargo build)")


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def switches(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("voluntary_ctxt_switches"):
            return int(line.split()[1])
    return 0


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stop-timeout", default="1s", help="the HTTP app's stop_timeout (agent.toml)")
    args = ap.parse_args()
    if not os.path.exists(EDGE):
        sh(os.path.join(ROOT, "scripts/edge-build.sh"), "x86_64", cwd=ROOT)
    wasmbox, guests = builder()
    work = tempfile.mkdtemp(prefix="wasmbox-bench-agent-")
    registry, addr = start_registry(work)
    build_env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "build"), WASMBOX_PASSWORD="pw")
    device_home = os.path.join(work, "device")
    os.makedirs(device_home, mode=0o700)
    device_env = dict(os.environ, WASMBOX_HOME=device_home)
    agent = None
    try:
        sh(wasmbox, "key", "generate", "--output-prefix", os.path.join(work, "fleet"), env=build_env,
           stderr=subprocess.DEVNULL)
        with open(os.path.join(device_home, "policy.json"), "w") as f:
            json.dump({"default": [{"type": "sigstoreSigned", "keyPath": os.path.join(work, "fleet.pub")}]}, f)

        def release(name, wasm, extra):
            app = tempfile.mkdtemp(dir=work)
            with open(os.path.join(app, "wasmbox.toml"), "w") as f:
                f.write(f'name = "{name}"\nversion = "1"\nwasm = "{wasm}"\n{extra}\n')
            ref = f"{addr}/edge/{name}:stable"
            for cmd in (["build", "--precompile", "x86_64", "-t", ref, app], ["push", "-q", ref],
                        ["sign", "--key", os.path.join(work, "fleet.key"), ref]):
                sh(wasmbox, *cmd, env=build_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return ref

        port = free_port()
        refs = {
            "tick-a": release("tick-a", guests["PROBE_MODULE"], 'args = ["tick", "0", "1000"]'),
            "tick-b": release("tick-b", guests["PROBE_MODULE"], 'args = ["tick", "0", "2000"]'),
            "web": release("web", guests["HTTP_PROBE_COMPONENT"], 'env = { VERSION = "v0" }'),
        }
        config = os.path.join(work, "agent.toml")
        with open(config, "w") as f:
            f.write('poll_interval = "30s"\n')
            for name in ["tick-a", "tick-b"]:
                f.write(f'[[app]]\nname = "{name}"\nimage = "{refs[name]}"\nhealth = {{ running = "1s" }}\n')
            f.write(f'[[app]]\nname = "web"\nimage = "{refs["web"]}"\nport = "127.0.0.1:{port}"\n'
                    f'stop_timeout = "{args.stop_timeout}"\nhealth = {{ http = "/health", timeout = "10s" }}\n')
        agent = subprocess.Popen([EDGE, "agent", "--config", config], env=device_env,
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "agent.log"), "w"))
        deadline = time.time() + 120
        while time.time() < deadline:
            out = subprocess.run([EDGE, "agent", "status", "--json"], env=device_env, capture_output=True, text=True)
            apps = json.loads(out.stdout or "[]")
            if len(apps) == 3 and all(a["state"] == "running" and a["current"] for a in apps):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the apps did not come up:\n" + open(os.path.join(work, "agent.log")).read())
        time.sleep(5)
        rss = mem_kib(agent.pid)
        daemon_pid = int(open(os.path.join(device_home, "wasmbox.lock")).read().strip())
        daemon_rss = mem_kib(daemon_pid)
        t0, s0 = cpu_ticks(agent.pid), switches(agent.pid)
        time.sleep(10)
        idle_ticks, idle_switches = cpu_ticks(agent.pid) - t0, switches(agent.pid) - s0
        binary = os.path.getsize(EDGE)

        serving, synced = [], []
        for i in range(1, args.rounds + 1):
            version = f"v{i}"
            release("web", guests["HTTP_PROBE_COMPONENT"], f'env = {{ VERSION = "{version}" }}')
            start = time.perf_counter()
            sync = subprocess.Popen([EDGE, "agent", "sync"], env=device_env, stdout=subprocess.DEVNULL)
            while get(port, "/env/VERSION") != version:
                if time.perf_counter() - start > 60:
                    raise SystemExit(f"{version} never served")
                time.sleep(0.005)
            serving.append(time.perf_counter() - start)
            sync.wait(timeout=120)
            synced.append(time.perf_counter() - start)
        print(f"edge binary (x86_64, stripped): {binary / 1e6:.2f} MB")
        print(f"agent VmRSS with 3 apps running: {rss / 1024:.1f} MiB (daemon holding the apps: {daemon_rss / 1024:.1f} MiB)")
        print(f"agent idle over 10 s: {idle_ticks} CPU ticks, {idle_switches} voluntary context switches")
        print(f"stop_timeout of the HTTP app: {args.stop_timeout}")
        print(f"tag move -> new version serving: median {statistics.median(serving) * 1000:.0f} ms "
              f"(min {min(serving) * 1000:.0f}, max {max(serving) * 1000:.0f}; {args.rounds} rounds)")
        print(f"tag move -> agent sync done (health passed, old version removed): median "
              f"{statistics.median(synced) * 1000:.0f} ms")
    finally:
        if agent:
            agent.kill()
            agent.wait()
        try:
            pid = int(open(os.path.join(device_home, "wasmbox.lock")).read().strip())
            os.kill(pid, 9)
        except (OSError, ValueError):
            pass
        registry.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
