#!/usr/bin/env bash
# WASI-NN inference latency, everything in one run, rounds interleaved (docs/benchmarks.md,
# "Inference"): a real CNN (light_squeezenet.onnx, shipped in the `onnx` wheel), one thread,
# a zero input of its shape, p50 of RUNS inferences per round, median over ROUNDS rounds of:
#   native   wasmbox-nn's own tract (crates/nn-onnx/examples/latency.rs), no Wasm
#   module   wasmbox run of the preview 1 guest (wasi_ephemeral_nn), timed inside the guest
#   comp     wasmbox run of the component guest (wasi:nn), timed inside the guest
#   tract-py the `tract` Python wheel of the same tract version
#   ort      ONNX Runtime's Python wheel, one intra-op thread
# Then `serve` of a classify endpoint (the http-classify guest, the digits model granted once):
# requests/s and latency under `hey` (POST one image, 4 connections, 5 s), beside the time one
# load of the model takes, which the server pays once and not per request.
# Usage: bench/nn_inference.sh [ROUNDS] [RUNS]   (default 5 rounds of 30 inferences)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
RUNS=${2:-30}
CACHE="$HOME/.cache/wasmbox-bench"
VENV="$CACHE/nn-venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check \
    onnx==1.23.2 onnxruntime==1.31.1 tract==0.23.9 numpy==2.4.6 scikit-learn==1.9.1
MODEL=$("$VENV/bin/python" -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend/test/data/light/light_squeezenet.onnx'))")

cargo build -q --release -p wasmbox --bin wasmbox --bin wasmbox-nn
cargo build -q --release -p wasmbox-nn-onnx --example latency
GUESTS="$CACHE/nn-guests"
(cd crates/test-programs/guests && cargo build -q --release --target wasm32-wasip1 --target wasm32-wasip2 --target-dir "$GUESTS")
WASMBOX_HOME=$(mktemp -d)
export WASMBOX_HOME
trap 'rm -rf "$WASMBOX_HOME"' EXIT

INPUT=$(target/release/examples/latency "$MODEL" 1 | awk '/^input/ {print $2}')
DIMS=$(target/release/examples/latency "$MODEL" 1 | awk -F'[][]' '/^input/ {gsub(/ /, "", $2); print $2}')
p50() { awk '/p50_us/ {print $2}'; }
run_guest() {
    target/release/wasmbox run --nn-model sq="$MODEL" "$GUESTS/$1/release/nn.wasm" bench sq "$RUNS" "$INPUT" "$DIMS" | p50
}
# Warm the compile cache so no round pays for compiling the guests.
run_guest wasm32-wasip1 >/dev/null
run_guest wasm32-wasip2 >/dev/null

RESULTS=$(mktemp)
for round in $(seq "$ROUNDS"); do
    echo "native $(target/release/examples/latency "$MODEL" "$RUNS" | p50)" >>"$RESULTS"
    echo "module $(run_guest wasm32-wasip1)" >>"$RESULTS"
    echo "comp $(run_guest wasm32-wasip2)" >>"$RESULTS"
    echo "tract-py $("$VENV/bin/python" bench/nn_python.py tract "$MODEL" "$RUNS" | p50)" >>"$RESULTS"
    echo "ort $("$VENV/bin/python" bench/nn_python.py ort "$MODEL" "$RUNS" | p50)" >>"$RESULTS"
    echo "round $round done" >&2
done
python3 - "$RESULTS" "$ROUNDS" "$RUNS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {k: statistics.median(int(v) for n, v in rows if n == k) for k in dict.fromkeys(n for n, _ in rows)}
print(f"light_squeezenet.onnx, 1x3x224x224 f32, one thread; median of {sys.argv[2]} rounds of p50 over {sys.argv[3]} inferences")
print(f"{'':10} {'p50 ms':>8} {'vs native tract':>16} {'vs ORT':>8}")
for k, v in med.items():
    print(f"{k:10} {v / 1000:8.2f} {v / med['native']:15.2f}x {v / med['ort']:7.2f}x")
PY
rm -f "$RESULTS"

# serve: one model load per process, then requests.
DIGITS=crates/nn/testdata/digits
echo
echo "digits.onnx load (parse + optimize), natively: $(target/release/examples/latency "$DIGITS/digits.onnx" 1 | awk '/load_ms/ {print $2}') ms"
head -c 256 "$DIGITS/test-images.f32" >"$WASMBOX_HOME/image.bin"
LOG="$WASMBOX_HOME/serve.log"
target/release/wasmbox serve --listen 127.0.0.1:0 --nn-model digits="$DIGITS/digits.onnx" \
    "$GUESTS/wasm32-wasip2/release/http-classify.wasm" 2>"$LOG" &
SERVER=$!
for _ in $(seq 100); do grep -q "Serving HTTP" "$LOG" && break; sleep 0.1; done
ADDR=$(sed -n 's|.*Serving HTTP on \(http://[^ ]*\)|\1|p' "$LOG" | head -1)
curl -sf --data-binary @"$WASMBOX_HOME/image.bin" "$ADDR" >/dev/null
hey -z 5s -c 4 -m POST -D "$WASMBOX_HOME/image.bin" "$ADDR" | grep -E "Requests/sec|50%|99%|\[200\]"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
