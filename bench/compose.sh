#!/usr/bin/env bash
# Composition (docs/benchmarks.md, "Composition"), in one run:
#  - `wasmbox compose` time and the composed size vs the sum of the parts, for the Rust app
#    with a Rust, a JavaScript (componentize-js) and a Python (componentize-py) provider;
#  - `wasmbox run DIR` (a wasmbox.toml app whose [dependencies] were composed and cached by an
#    earlier run) vs `wasmbox run` of the already-composed component, interleaved by hyperfine:
#    what finding the cached composition adds to a start.
# Needs the pinned toolchains of scripts/deps.sh. Usage: bench/compose.sh [RUNS] (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
TOOLS="$HOME/.cache/wasmbox-test"
command -v hyperfine >/dev/null || { echo "bench/compose.sh needs hyperfine (Debian package hyperfine)" >&2; exit 1; }
cargo build -q --release -p wasmbox --bin wasmbox
GUESTS="$HOME/.cache/wasmbox-bench/compose-guests"
(cd crates/test-programs/guests && cargo build -q --release --target wasm32-wasip2 --target-dir "$GUESTS")
W=$(mktemp -d)
export WASMBOX_HOME="$W/home"
trap 'rm -rf "$W"' EXIT
WB="$PWD/target/release/wasmbox"
WIT="$PWD/crates/test-programs/guests/wit/greet"
cp "$GUESTS/wasm32-wasip2/release/greet-app.wasm" "$W/app.wasm"
cp "$GUESTS/wasm32-wasip2/release/greet-rust.wasm" "$W/greet-rust.wasm"
"$TOOLS/componentize-js-0.23.0/node_modules/.bin/componentize-js" --wit "$WIT" --world-name provider \
    --disable http fetch-event -o "$W/greet-js.wasm" crates/test-programs/polyglot/greet.js >/dev/null
(cd crates/test-programs/polyglot && "$TOOLS/componentize-py-0.25.1/bin/componentize-py" -d "$WIT" -w provider \
    componentize greet -o "$W/greet-py.wasm" >/dev/null)

cd "$W"
size() { stat -c %s "$1"; }
echo "| provider | app + provider (bytes) | composed (bytes) | compose time (median of 5) |"
echo "|---|---|---|---|"
for p in greet-rust greet-js greet-py; do
    times=()
    for _ in 1 2 3 4 5; do
        t=$("$WB" compose app.wasm --plug "$p.wasm" -o "$p-all.wasm" 2>&1 | sed -n 's/.*bytes, \([0-9.]*\) ms).*/\1/p')
        times+=("$t")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
    echo "| $p | $(( $(size app.wasm) + $(size "$p.wasm") )) | $(size "$p-all.wasm") | $median ms |"
done

mkdir app && cp app.wasm greet-rust.wasm app/
printf 'name = "bench"\nwasm = "app.wasm"\n[dependencies]\n"example:greet/greeter" = "greet-rust.wasm"\n' >app/wasmbox.toml
"$WB" compose app.wasm --plug greet-rust.wasm -o composed.wasm 2>/dev/null
# Warm both: the composition cache (DIR) and the compile cache (the same composed bytes).
"$WB" run ./app x >/dev/null; "$WB" run composed.wasm x >/dev/null
# Interleaved: ROUNDS rounds, each timing both (order alternating), RUNS/ROUNDS runs apiece.
ROUNDS=10
for r in $(seq 1 $ROUNDS); do
    a="$WB run ./app x"; b="$WB run composed.wasm x"
    if [ $((r % 2)) -eq 0 ]; then t=$a; a=$b; b=$t; fi
    hyperfine -N -w 5 -r $((RUNS / ROUNDS)) --export-json "run-$r.json" "$a" "$b" >/dev/null 2>&1
done
python3 - "$ROUNDS" <<'PY'
import json, statistics, sys
dirs, comps = [], []
for r in range(1, int(sys.argv[1]) + 1):
    for x in json.load(open(f"run-{r}.json"))["results"]:
        (dirs if "./app" in x["command"] else comps).append(x["median"] * 1e3)
d, c = statistics.median(dirs), statistics.median(comps)
diffs = sorted(a - b for a, b in zip(dirs, comps))
print(f"\nrun DIR (cached composition): {d:.2f} ms; run composed.wasm: {c:.2f} ms (medians of {len(dirs)} "
      f"round medians); per-round difference: median {statistics.median(diffs):+.2f} ms, "
      f"range {diffs[0]:+.2f}..{diffs[-1]:+.2f} ms")
PY
