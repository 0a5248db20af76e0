"""Regenerates the digits classifier the WASI-NN tests use (committed beside this script).

A small multi-layer perceptron trained on scikit-learn's bundled digits dataset (8x8 images,
1797 samples, no download), written as a plain ONNX graph (Gemm, Relu, Gemm) with onnx's own
helpers, plus held-out test images the model never saw:

  digits.onnx        input `pixels` float32 [batch, 64] (pixel / 16), output `logits` float32 [batch, 10]
  test-images.f32    100 held-out images, float32 little-endian, 64 values each
  test-labels.u8     their labels, one byte each
  heavy.onnx         not a classifier: 40 chained 2048x2048 matrix products (input `x` float32
                     [2048, 2048]), seconds of CPU per inference, for deadline tests

Pinned toolchain (any machine with Python 3.11):
  python3 -m venv venv && venv/bin/pip install scikit-learn==1.9.1 onnx==1.23.2 numpy==2.4.6
  venv/bin/python make.py
"""

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = pathlib.Path(__file__).parent
TEST_IMAGES = 100

digits = load_digits()
x = (digits.data / 16.0).astype(np.float32)
y = digits.target.astype(np.uint8)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=600, random_state=0)
mlp.fit(x_train, y_train)
print(f"held-out accuracy (sklearn): {mlp.score(x_test, y_test):.4f}")

w1, w2 = (w.astype(np.float32) for w in mlp.coefs_)
b1, b2 = (b.astype(np.float32) for b in mlp.intercepts_)
graph = helper.make_graph(
    [
        helper.make_node("Gemm", ["pixels", "w1", "b1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["hidden_relu"]),
        helper.make_node("Gemm", ["hidden_relu", "w2", "b2"], ["logits"]),
    ],
    "digits",
    [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 64])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    initializer=[numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="wasmbox-digits")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, HERE / "digits.onnx")

(HERE / "test-images.f32").write_bytes(x_test[:TEST_IMAGES].astype("<f4").tobytes())
(HERE / "test-labels.u8").write_bytes(y_test[:TEST_IMAGES].tobytes())
print(f"wrote digits.onnx and {TEST_IMAGES} held-out images")

# The heavy model: its weight is made at load time (ConstantOfShape), so the file stays tiny.
shape = numpy_helper.from_array(np.array([2048, 2048], dtype=np.int64), "shape")
nodes = [helper.make_node("ConstantOfShape", ["shape"], ["w"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0005]))]
prev = "x"
for i in range(40):
    nodes.append(helper.make_node("MatMul", [prev, "w"], [f"m{i}"]))
    prev = f"m{i}"
nodes.append(helper.make_node("Identity", [prev], ["y"]))
heavy = helper.make_graph(
    nodes,
    "heavy",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2048, 2048])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2048, 2048])],
    initializer=[shape],
)
heavy_model = helper.make_model(heavy, opset_imports=[helper.make_opsetid("", 13)], producer_name="wasmbox-heavy")
heavy_model.ir_version = 8
onnx.checker.check_model(heavy_model)
onnx.save(heavy_model, HERE / "heavy.onnx")
print("wrote heavy.onnx")
