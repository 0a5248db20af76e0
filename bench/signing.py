#!/usr/bin/env python3
"""Signing benchmark: what the trust policy costs `wasmbox run REF` of a stored, signed image
(the offline re-check of its stored signatures), side by side with the same run without a
policy, interleaved in random order; and `pull` of the signed image with and without a policy.

Usage: bench/signing.py [--rounds N]   (needs Debian's docker-registry; scripts/test.sh installs it)
"""
import argparse, os, random, statistics, subprocess, tempfile

from benchlib import WASMBOX, guests, sh, start_registry, timed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    module = guests()["PROBE_MODULE"]
    work = tempfile.mkdtemp(prefix="wasmbox-bench-signing-")
    registry, addr = start_registry(work)
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ref = f"{addr}/bench/signed:1"
        base = dict(os.environ, WASMBOX_PASSWORD="bench")
        build_env = dict(base, WASMBOX_HOME=os.path.join(work, "build"))
        sh(WASMBOX, "build", "-t", ref, module, env=build_env, **quiet)
        sh(WASMBOX, "push", "-q", ref, env=build_env, **quiet)
        key = os.path.join(work, "bench")
        sh(WASMBOX, "key", "generate", "--output-prefix", key, env=build_env, **quiet)
        sh(WASMBOX, "sign", "--key", key + ".key", ref, env=build_env, **quiet)

        plain = dict(base, WASMBOX_HOME=os.path.join(work, "plain"))
        policed = dict(base, WASMBOX_HOME=os.path.join(work, "policed"))
        os.makedirs(policed["WASMBOX_HOME"], mode=0o700)
        with open(os.path.join(policed["WASMBOX_HOME"], "policy.json"), "w") as f:
            f.write('{"default":[{"type":"sigstoreSigned","keyPath":"%s.pub"}]}' % key)
        pulls = {"plain": [], "policed": []}
        for i in range(10):
            for name, env in random.sample([("plain", plain), ("policed", policed)], 2):
                fresh = dict(env, WASMBOX_HOME=env["WASMBOX_HOME"] + f"-pull{i}")
                if name == "policed":
                    os.makedirs(fresh["WASMBOX_HOME"], mode=0o700)
                    with open(os.path.join(fresh["WASMBOX_HOME"], "policy.json"), "w") as f:
                        f.write('{"default":[{"type":"sigstoreSigned","keyPath":"%s.pub"}]}' % key)
                pulls[name].append(timed([WASMBOX, "pull", "-q", ref], fresh))
        for env in (plain, policed):
            sh(WASMBOX, "pull", "-q", ref, env=env, **quiet)
            sh(WASMBOX, "run", ref, "hello", env=env, **quiet)  # warm the compile cache
        runs = {"plain": [], "policed": []}
        for _ in range(args.rounds):
            for name, env in random.sample([("plain", plain), ("policed", policed)], 2):
                runs[name].append(timed([WASMBOX, "run", ref, "hello"], env, b"hello"))
    finally:
        registry.terminate()

    def ms(xs):
        return statistics.median(xs) * 1000

    print(f"| scenario | without policy (median) | with policy (median) | added |")
    print(f"|---|---|---|---|")
    for label, data in (("run REF (stored, signed)", runs), ("pull REF (fresh home)", pulls)):
        a, b = ms(data["plain"]), ms(data["policed"])
        print(f"| {label} | {a:.2f} ms | {b:.2f} ms | {b - a:+.2f} ms |")
    print(f"rounds: run {args.rounds} each, pull 10 each")


if __name__ == "__main__":
    main()
