"""TinyCenterNet: a small fully-convolutional, anchor-free detector for small aerial targets (torch).

Input (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 (any size: the network is fully convolutional).

Layout v1 (shipped, ``ArchSpec()``): strided 3x3 stem, depthwise-separable stages at strides 4/8/16/32, an
FPN top-down path back to stride 4. Layout v2 (``ArchSpec(**V2_PATCH)``, the session-2 candidate): the
full-resolution image is touched once, by a 4x4 stride-4 convolution (a learned pixel-unshuffle: every input
pixel feeds the stride-4 grid), so no 3x3 convolution runs at full or half resolution; the stride-4 grid gets
one cheap depthwise-separable block and capacity sits at strides 8/16/32. At stride 4 the head predicts
  * a per-class centre heatmap (C channels, CenterNet: Zhou et al., "Objects as Points", 2019), and
  * a box: sub-cell centre offset (2) and log width/height in units of the stride (2).
The exported graph (``ExportWrapper``) decodes in-graph and returns
  ``heatmap``   (B, C, H/4, W/4) sigmoid scores with non-peak cells (3x3 max-pool NMS) set to 0, and
  ``boxes_cxcywh`` (B, 4, H/4, W/4) box centre and size in input pixels,
which is the "interceptor-centernet" layout that ``autonomy.perception.decode`` reads.

``ArchSpec`` holds the widths/depths; it is written into the ONNX metadata (``arch``) and the .train.json.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 4


@dataclass(frozen=True)
class ArchSpec:
    """Channel widths at strides 2/4/8/16/32, blocks per stage, FPN width, head width, stem and neck kind.

    The defaults are the SHIPPED models' layout (v1 and its fine-tunes, ``models/detector*.onnx``): a 3x3 stride-2
    stem to ``c2`` channels and a stride-2 block to ``c4`` (``stem=2``), the plain FPN neck (``neck=1``: lateral 1x1 convs
    summed top-down to stride 4, head width = FPN width). ``V2_PATCH`` below is the session-2 candidate.
    """

    c2: int = 16
    c4: int = 32
    c8: int = 64
    c16: int = 128
    c32: int = 192
    n4: int = 0
    n8: int = 2
    n16: int = 3
    n32: int = 2
    fpn: int = 32
    head: int = 32
    stem: int = 2  # 2: 3x3 stride-2 conv + stride-2 block (v1); 4: one 4x4 stride-4 "patch" conv (v2)
    neck: int = 1  # 1: v1 FPN; 2: an extra block at stride 8 and a 1x1 to the (narrower) head width at stride 4

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, pad: int | None = None) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2 if pad is None else pad, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class DWBlock(nn.Module):
    """Depthwise 3x3 (stride s) + pointwise 1x1; residual when shapes match."""

    def __init__(self, cin: int, cout: int, s: int = 1) -> None:
        super().__init__()
        self.dw = _cbr(cin, cin, 3, s, groups=cin)
        self.pw = _cbr(cin, cout, 1)
        self.res = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.res else y


def _stage(cin: int, cout: int, n: int, s: int) -> nn.Sequential:
    return nn.Sequential(DWBlock(cin, cout, s), *[DWBlock(cout, cout) for _ in range(max(n - 1, 0))])


# the session-2 candidate (models/results/session2_candidate): patch stem, cheap stride-4 path
V2_PATCH = {"stem": 4, "c4": 24, "c8": 48, "c16": 96, "c32": 160, "n4": 1, "fpn": 32, "head": 24, "neck": 2}


class TinyCenterNet(nn.Module):
    def __init__(self, num_classes: int = 4, spec: ArchSpec | None = None) -> None:
        super().__init__()
        a = self.spec = spec or ArchSpec()
        self.num_classes = num_classes
        if a.stem == 4:
            self.stem = _cbr(3, a.c4, 4, 4, pad=0)                               # /4, patchify
        elif a.stem == 2:
            self.stem = nn.Sequential(_cbr(3, a.c2, 3, 2), DWBlock(a.c2, a.c4, 2))  # /2 then /4
        else:
            raise ValueError(f"ArchSpec.stem must be 4 or 2, got {a.stem}")
        self.s4 = nn.Sequential(*[DWBlock(a.c4, a.c4) for _ in range(a.n4)])      # /4
        self.s8 = _stage(a.c4, a.c8, a.n8, 2)                                    # /8
        self.s16 = _stage(a.c8, a.c16, a.n16, 2)                                 # /16
        self.s32 = _stage(a.c16, a.c32, a.n32, 2)                                # /32
        n = a.fpn
        self.l32 = _cbr(a.c32, n, 1)
        self.l16 = _cbr(a.c16, n, 1)
        self.l8 = _cbr(a.c8, n, 1)
        if a.neck == 2:
            self.m8: nn.Module = DWBlock(n, n)
            self.up4: nn.Module = _cbr(n, a.head, 1)
        elif a.neck == 1:
            if a.head != n:
                raise ValueError(f"neck=1 needs head == fpn, got head={a.head}, fpn={n}")
            self.m8 = nn.Identity()
            self.up4 = nn.Identity()
        else:
            raise ValueError(f"ArchSpec.neck must be 1 or 2, got {a.neck}")
        self.l4 = _cbr(a.c4, a.head, 1)
        self.head = DWBlock(a.head, a.head)
        self.hm = nn.Conv2d(a.head, num_classes, 1)
        self.reg = nn.Conv2d(a.head, 4, 1)
        nn.init.normal_(self.hm.weight, std=0.01)
        nn.init.constant_(self.hm.bias, -4.6)  # prior 0.01 (focal-loss init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (heatmap logits (B,C,H/4,W/4), reg (B,4,H/4,W/4) = [dx, dy, log w/s, log h/s])."""
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.l32(f32)
        p = self.l16(f16) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self.m8(self.l8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.l4(f4) + F.interpolate(self.up4(p), scale_factor=2.0, mode="nearest")
        p = self.head(p)
        return self.hm(p), self.reg(p)


class ExportWrapper(nn.Module):
    """Adds sigmoid, 3x3 peak NMS and box decoding in input pixels, for ONNX export."""

    def __init__(self, net: TinyCenterNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, reg = self.net(x)
        hm = torch.sigmoid(logits)
        peaks = F.max_pool2d(hm, 3, 1, 1)
        hm = hm * (peaks == hm).to(hm.dtype)
        h, w = hm.shape[-2], hm.shape[-1]
        ys = torch.arange(h, dtype=hm.dtype, device=hm.device).view(1, 1, h, 1).expand(1, 1, h, w)
        xs = torch.arange(w, dtype=hm.dtype, device=hm.device).view(1, 1, 1, w).expand(1, 1, h, w)
        cx = (xs + 0.5 + reg[:, 0:1]) * STRIDE
        cy = (ys + 0.5 + reg[:, 1:2]) * STRIDE
        bw = torch.exp(reg[:, 2:3].clamp(-4.0, 6.0)) * STRIDE
        bh = torch.exp(reg[:, 3:4].clamp(-4.0, 6.0)) * STRIDE
        return hm, torch.cat([cx, cy, bw, bh], dim=1)


def load_onnx_weights(net: TinyCenterNet, onnx_path) -> None:
    """Load the weights of a model exported by ``models.train`` (the exporter folds each BatchNorm into the
    convolution before it) into ``net``, for fine-tuning a shipped ``.onnx`` whose ``.pt`` is gone.

    Each convolution gets the folded weight; its BatchNorm becomes the identity plus the folded bias (running
    mean 0, running variance 1 - eps, scale 1, shift = bias), so ``net`` in eval mode computes what the file
    does. Fine-tune with the BatchNorms in eval mode (:func:`freeze_batchnorm`): in training mode their batch
    statistics would change the function at once. The graph's convolutions are taken in order and must match
    ``net``'s in number and shape, else ValueError (``models.train`` also checks the outputs against the file)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if len(nodes) != len(convs):
        raise ValueError(f"{onnx_path}: {len(nodes)} convolutions in the graph, {len(convs)} in the network")
    bn_after = {}
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            kids = list(seq.children())
            bn_after.update({id(a): b for a, b in itertools.pairwise(kids)
                             if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)})
    with torch.no_grad():
        for node, conv in zip(nodes, convs):
            if len(node.input) < 3 or node.input[1] not in init or node.input[2] not in init:
                raise ValueError(f"{onnx_path}: convolution {node.name} has no constant weight and bias")
            w, b = init[node.input[1]], init[node.input[2]]
            if tuple(w.shape) != tuple(conv.weight.shape) or b.shape != (conv.out_channels,):
                raise ValueError(f"{onnx_path}: {node.name} has weight {tuple(w.shape)}, the network's "
                                 f"convolution there {tuple(conv.weight.shape)} (another --arch?)")
            conv.weight.copy_(torch.from_numpy(w.copy()))
            bn = bn_after.get(id(conv))
            if bn is not None:
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b.copy()))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b.copy()))
            else:
                raise ValueError(f"{onnx_path}: {node.name} has a bias the network cannot hold")


def freeze_batchnorm(net: nn.Module) -> nn.Module:
    """Put every BatchNorm in eval mode (running statistics fixed; scale and shift still learn). Call after
    ``net.train()``, which would undo it."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return net
