"""A YOLOv8n-architecture ONNX graph with random weights, built with the ``onnx`` package alone (no torch).

Layer list of ultralytics ``yolov8n.yaml`` (depth 0.33, width 0.25): Conv(BN folded into bias)+SiLU, C2f,
SPPF, a PAN neck, and the decoupled Detect head with DFL (reg_max 16) for 80 classes, output (1, 84, N) in
the v8 layout (cx, cy, w, h in input pixels, then 80 class scores). Only the architecture matters here: it is
the latency baseline of ``bench/bench_detector.py`` and a realistic v8-layout graph for decoder tests.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _G:
    def __init__(self, rng: np.random.Generator) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.rng = rng
        self.n = 0

    def name(self, p: str) -> str:
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, arr: np.ndarray, p: str = "c") -> str:
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 1, s: int = 1, act: bool = True) -> str:
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        b = np.zeros(cout, np.float32)
        y = self.op("Conv", [x, self.const(w, "w"), self.const(b, "b")], kernel_shape=[k, k],
                    strides=[s, s], pads=[k // 2] * 4)
        return self.op("Mul", [y, self.op("Sigmoid", [y])]) if act else y

    def c2f(self, x: str, cin: int, cout: int, n: int, shortcut: bool) -> str:
        c = cout // 2
        y = self.conv(x, cin, 2 * c, 1)
        a = self.name("split_a")
        b = self.name("split_b")
        self.nodes.append(helper.make_node("Split", [y, self.const(np.array([c, c], np.int64))], [a, b], axis=1))
        outs = [a, b]
        cur = b
        for _ in range(n):
            z = self.conv(self.conv(cur, c, c, 3), c, c, 3)
            cur = self.op("Add", [cur, z]) if shortcut else z
            outs.append(cur)
        return self.conv(self.op("Concat", outs, axis=1), (2 + n) * c, cout, 1)

    def sppf(self, x: str, cin: int, cout: int) -> str:
        c = cin // 2
        y = self.conv(x, cin, c, 1)
        ys = [y]
        for _ in range(3):
            ys.append(self.op("MaxPool", [ys[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2]))
        return self.conv(self.op("Concat", ys, axis=1), 4 * c, cout, 1)

    def up(self, x: str) -> str:
        return self.op("Resize", [x, "", self.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")


def build_yolov8n(size_hw: tuple[int, int] = (320, 320), num_classes: int = 80, seed: int = 0) -> onnx.ModelProto:
    """YOLOv8n graph for a fixed input (1, 3, H, W); output ``output0`` (1, 4 + num_classes, N)."""
    h, w = size_hw
    g = _G(np.random.default_rng(seed))
    x = "images"
    x = g.conv(x, 3, 16, 3, 2)
    x = g.conv(x, 16, 32, 3, 2)
    x = g.c2f(x, 32, 32, 1, True)
    x = g.conv(x, 32, 64, 3, 2)
    p3 = g.c2f(x, 64, 64, 2, True)
    x = g.conv(p3, 64, 128, 3, 2)
    p4 = g.c2f(x, 128, 128, 2, True)
    x = g.conv(p4, 128, 256, 3, 2)
    x = g.c2f(x, 256, 256, 1, True)
    p5 = g.sppf(x, 256, 256)
    h4 = g.c2f(g.op("Concat", [g.up(p5), p4], axis=1), 384, 128, 1, False)
    h3 = g.c2f(g.op("Concat", [g.up(h4), p3], axis=1), 192, 64, 1, False)
    n4 = g.c2f(g.op("Concat", [g.conv(h3, 64, 64, 3, 2), h4], axis=1), 192, 128, 1, False)
    n5 = g.c2f(g.op("Concat", [g.conv(n4, 128, 128, 3, 2), p5], axis=1), 384, 256, 1, False)
    reg_max, c2, c3 = 16, 64, max(64, min(num_classes, 100))
    box_parts, cls_parts, anchors, strides = [], [], [], []
    for feat, ch, s in ((h3, 64, 8), (n4, 128, 16), (n5, 256, 32)):
        bx = g.conv(g.conv(g.conv(feat, ch, c2, 3), c2, c2, 3), c2, 4 * reg_max, 1, act=False)
        cl = g.conv(g.conv(g.conv(feat, ch, c3, 3), c3, c3, 3), c3, num_classes, 1, act=False)
        fh, fw = h // s, w // s
        box_parts.append(g.op("Reshape", [bx, g.const(np.array([1, 4 * reg_max, fh * fw], np.int64))]))
        cls_parts.append(g.op("Reshape", [cl, g.const(np.array([1, num_classes, fh * fw], np.int64))]))
        yy, xx = np.meshgrid(np.arange(fh) + 0.5, np.arange(fw) + 0.5, indexing="ij")
        anchors.append(np.stack([xx.ravel(), yy.ravel()]))
        strides.append(np.full(fh * fw, s, np.float32))
    n = sum(a.shape[1] for a in anchors)
    box = g.op("Concat", box_parts, axis=2)
    cls = g.op("Concat", cls_parts, axis=2)
    # DFL: softmax over the 16 bins of each side, expectation via a 1x1 conv with weights 0..15
    d = g.op("Reshape", [box, g.const(np.array([1, 4, reg_max, n], np.int64))])
    d = g.op("Softmax", [g.op("Transpose", [d], perm=[0, 2, 1, 3])], axis=1)
    d = g.op("Conv", [d, g.const(np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1))])
    d = g.op("Reshape", [d, g.const(np.array([1, 4, n], np.int64))])
    lt = g.op("Slice", [d, g.const(np.array([0], np.int64)), g.const(np.array([2], np.int64)),
                        g.const(np.array([1], np.int64))])
    rb = g.op("Slice", [d, g.const(np.array([2], np.int64)), g.const(np.array([4], np.int64)),
                        g.const(np.array([1], np.int64))])
    anc = g.const(np.concatenate(anchors, axis=1)[None].astype(np.float32))
    x1y1 = g.op("Sub", [anc, lt])
    x2y2 = g.op("Add", [anc, rb])
    cxy = g.op("Div", [g.op("Add", [x1y1, x2y2]), g.const(np.array(2.0, np.float32))])
    wh = g.op("Sub", [x2y2, x1y1])
    xywh = g.op("Mul", [g.op("Concat", [cxy, wh], axis=1), g.const(np.concatenate(strides)[None, None])])
    out = g.op("Concat", [xywh, g.op("Sigmoid", [cls])], axis=1)
    g.nodes.append(helper.make_node("Identity", [out], ["output0"]))
    graph = helper.make_graph(
        g.nodes, "yolov8n",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + num_classes, n])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
