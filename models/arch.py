"""TinyCenterNet: a small fully-convolutional, anchor-free detector for small aerial targets (torch).

Input (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 (any size: the network is fully convolutional).
Backbone: a strided 3x3 stem then depthwise-separable stages at strides 4, 8, 16, 32; an FPN-style top-down
path brings context back to stride 4, where the head predicts
  * a per-class centre heatmap (C channels, CenterNet: Zhou et al., "Objects as Points", 2019), and
  * a box: sub-cell centre offset (2) and log width/height in units of the stride (2).
The exported graph (``ExportWrapper``) decodes in-graph and returns
  ``heatmap``   (B, C, H/4, W/4) sigmoid scores with non-peak cells (3x3 max-pool NMS) set to 0, and
  ``boxes_cxcywh`` (B, 4, H/4, W/4) box centre and size in input pixels,
which is the "interceptor-centernet" layout that ``autonomy.perception.decode`` reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 4


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
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


class TinyCenterNet(nn.Module):
    def __init__(self, num_classes: int = 4, width: tuple[int, ...] = (16, 32, 64, 128, 192)) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = width
        self.num_classes = num_classes
        self.stem = _cbr(3, c0, 3, 2)                                    # /2
        self.s4 = nn.Sequential(DWBlock(c0, c1, 2))                        # /4
        self.s8 = nn.Sequential(DWBlock(c1, c2, 2), DWBlock(c2, c2))      # /8
        self.s16 = nn.Sequential(DWBlock(c2, c3, 2), DWBlock(c3, c3), DWBlock(c3, c3))  # /16
        self.s32 = nn.Sequential(DWBlock(c3, c4, 2), DWBlock(c4, c4))     # /32
        n = 32
        self.l32 = _cbr(c4, n, 1)
        self.l16 = _cbr(c3, n, 1)
        self.l8 = _cbr(c2, n, 1)
        self.l4 = _cbr(c1, n, 1)
        self.head = nn.Sequential(DWBlock(n, n))
        self.hm = nn.Conv2d(n, num_classes, 1)
        self.reg = nn.Conv2d(n, 4, 1)
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
        p = self.l8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self.l4(f4) + F.interpolate(p, scale_factor=2.0, mode="nearest")
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
