"""Native baselines of bench/nn_inference.sh: `nn_python.py tract|ort MODEL RUNS`.

Times RUNS inferences (after 3 warm-up runs) of MODEL's first input filled with zeros on one
thread, input copy included, and prints `p50_us N p90_us N` like the wasmbox guest does.
"""

import sys
import time

import numpy as np

engine, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

if engine == "tract":
    import tract

    model = tract.onnx().load(path)
    shape = [int(d) for d in str(model.input_fact(0)).split(",")[:-1]]
    # The wheel's into_runnable makes the plan of the typed model (tract's Python API has no
    # separate optimize step to call).
    runnable = model.into_model().into_runnable()

    def infer(x):
        return runnable.run([x])

elif engine == "ort":
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]

    def infer(x):
        return session.run(None, {first.name: x})

else:
    sys.exit(f"unknown engine {engine}")

times = []
for i in range(runs + 3):
    started = time.perf_counter_ns()
    infer(np.zeros(shape, dtype=np.float32))
    if i >= 3:
        times.append((time.perf_counter_ns() - started) // 1000)
times.sort()
print(f"p50_us {times[len(times) // 2]} p90_us {times[len(times) * 9 // 10]}")
