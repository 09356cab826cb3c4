"""Train TinyCenterNet on the real training split (+ optional synthetic renders) and export ONNX.

Reproduce the shipped model (GPU, ~8 min on one H100):
    python -m models.train --data ../shared/data --device cuda --steps 12000 --batch 96 --every 2 \
        --out models/detector.onnx
CPU (slower, smaller, same recipe):
    python -m models.train --data ../shared/data --device cpu --steps 1500 --batch 16 --every 10 \
        --out models/detector.onnx
Optional synthetic renders (``python -m sitl.render.dataset --out DIR --n N --seed S``): ``--synthetic DIR``.

Training samples are 256x256 crops taken from whole 640x512 canvases with a random affine (scale
0.6-1.6, translation, horizontal flip) via ``grid_sample``, 60 % centred near a labelled object, plus
photometric jitter (brightness, contrast, grayscale, noise). Loss: CenterNet focal loss on the per-class
heatmap + L1 on centre offset and log size at the object's centre cell.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise SystemExit("models.train needs torch: pip install '.[train]'") from exc

from models.arch import STRIDE, ExportWrapper, TinyCenterNet
from models.data import CANVAS_WH, load_training_set
from models.split import CLASSES


def _pack_boxes(boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten per-frame boxes into (M, 5) with an offsets array (N+1,)."""
    counts = np.array([len(b) for b in boxes])
    offs = np.concatenate([[0], np.cumsum(counts)])
    flat = np.concatenate(boxes) if counts.sum() else np.zeros((0, 5), np.float32)
    return flat.astype(np.float32), offs


class Sampler:
    """Builds augmented batches on ``device`` from frames kept on that device."""

    def __init__(self, images: np.ndarray, boxes: list[np.ndarray], device: torch.device, crop: int,
                 gen: np.random.Generator) -> None:
        self.dev = device
        self.images = torch.from_numpy(images).to(device)  # (N, H, W, 3) uint8
        self.flat, self.offs = _pack_boxes(boxes)
        self.crop = crop
        self.gen = gen
        self.n = len(images)
        self.with_boxes = np.flatnonzero(np.diff(self.offs) > 0)
        self.H, self.W = images.shape[1:3]

    def batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
        g, C, W, H = self.gen, self.crop, self.W, self.H
        centred = g.random(b) < 0.6
        idx = np.where(centred, g.choice(self.with_boxes, b), g.integers(0, self.n, b))
        scale = np.exp(g.uniform(np.log(0.6), np.log(1.6), b))
        flip = np.where(g.random(b) < 0.5, -1.0, 1.0)
        half = C / (2 * scale)
        cx = g.uniform(0, W, b)
        cy = g.uniform(0, H, b)
        for k in np.flatnonzero(centred):
            rows = self.flat[self.offs[idx[k]]:self.offs[idx[k] + 1]]
            r = rows[g.integers(0, len(rows))]
            cx[k] = 0.5 * (r[1] + r[3]) + g.uniform(-0.8, 0.8) * half[k]
            cy[k] = 0.5 * (r[2] + r[4]) + g.uniform(-0.8, 0.8) * half[k]
        theta = np.zeros((b, 2, 3), np.float32)
        theta[:, 0, 0] = C * flip / (scale * W)
        theta[:, 0, 2] = 2 * cx / W - 1
        theta[:, 1, 1] = C / (scale * H)
        theta[:, 1, 2] = 2 * cy / H - 1
        src = self.images[torch.from_numpy(idx).to(self.dev)].permute(0, 3, 1, 2).float() / 255.0
        grid = F.affine_grid(torch.from_numpy(theta).to(self.dev), (b, 3, C, C), align_corners=False)
        x = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # photometric jitter
        gray = torch.from_numpy(g.random(b) < 0.2).to(self.dev)
        xm = x.mean(1, keepdim=True).expand_as(x)
        x = torch.where(gray.view(b, 1, 1, 1), xm, x)
        contrast = torch.from_numpy(g.uniform(0.6, 1.4, (b, 1, 1, 1)).astype(np.float32)).to(self.dev)
        bright = torch.from_numpy(g.uniform(-0.15, 0.15, (b, 1, 1, 1)).astype(np.float32)).to(self.dev)
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + bright
        noise = torch.from_numpy(g.uniform(0, 0.03, (b, 1, 1, 1)).astype(np.float32)).to(self.dev)
        x = (x + noise * torch.randn_like(x)).clamp(0, 1)
        # boxes into crop pixels: Xo = (X - cx) * s * f + C/2
        out_boxes = []
        for k in range(b):
            rows = self.flat[self.offs[idx[k]]:self.offs[idx[k] + 1]]
            if not len(rows):
                out_boxes.append(np.zeros((0, 5), np.float32))
                continue
            xa = (rows[:, 1] - cx[k]) * scale[k] * flip[k] + C / 2
            xb = (rows[:, 3] - cx[k]) * scale[k] * flip[k] + C / 2
            ya = (rows[:, 2] - cy[k]) * scale[k] + C / 2
            yb = (rows[:, 4] - cy[k]) * scale[k] + C / 2
            x0, x1 = np.minimum(xa, xb), np.maximum(xa, xb)
            area = (x1 - x0) * (yb - ya)
            x0c, x1c = np.clip(x0, 0, C), np.clip(x1, 0, C)
            y0c, y1c = np.clip(ya, 0, C), np.clip(yb, 0, C)
            vis = (x1c - x0c) * (y1c - y0c) / np.maximum(area, 1e-6)
            keep = (vis > 0.5) & (x1c - x0c >= 2) & (y1c - y0c >= 2)
            out_boxes.append(np.stack([rows[:, 0], x0c, y0c, x1c, y1c], 1)[keep].astype(np.float32))
        hm, reg, ind, mask = self.targets(out_boxes, b)
        return x, (hm, reg, ind, mask), out_boxes

    def targets(self, boxes: list[np.ndarray], b: int):
        nc, S = len(CLASSES), self.crop // STRIDE
        rows = [(k, *r) for k, bx in enumerate(boxes) for r in bx]
        hm = torch.zeros(b * nc, S * S, device=self.dev)
        max_obj = 16
        reg = torch.zeros(b, max_obj, 4, device=self.dev)
        ind = torch.zeros(b, max_obj, dtype=torch.long, device=self.dev)
        mask = torch.zeros(b, max_obj, device=self.dev)
        if not rows:
            return hm.view(b, nc, S, S), reg, ind, mask
        r = np.array(rows, np.float32)
        k, c = r[:, 0].astype(int), r[:, 1].astype(int)
        cxs = 0.5 * (r[:, 2] + r[:, 4]) / STRIDE
        cys = 0.5 * (r[:, 3] + r[:, 5]) / STRIDE
        ws = (r[:, 4] - r[:, 2]) / STRIDE
        hs = (r[:, 5] - r[:, 3]) / STRIDE
        ix = np.clip(np.floor(cxs), 0, S - 1).astype(int)
        iy = np.clip(np.floor(cys), 0, S - 1).astype(int)
        sx = np.maximum(ws / 6.0, 0.6)
        sy = np.maximum(hs / 6.0, 0.6)
        grid = torch.arange(S, device=self.dev, dtype=torch.float32)
        gx = torch.exp(-0.5 * ((grid[None, :] - torch.tensor(ix, device=self.dev)[:, None]) /
                               torch.tensor(sx, device=self.dev)[:, None]) ** 2)
        gy = torch.exp(-0.5 * ((grid[None, :] - torch.tensor(iy, device=self.dev)[:, None]) /
                               torch.tensor(sy, device=self.dev)[:, None]) ** 2)
        gauss = (gy[:, :, None] * gx[:, None, :]).reshape(len(r), S * S)
        hm.index_reduce_(0, torch.tensor(k * nc + c, device=self.dev), gauss, "amax", include_self=True)
        slot = np.zeros(len(r), int)
        seen: dict[int, int] = {}
        for j, kk in enumerate(k):
            slot[j] = seen.get(kk, 0)
            seen[kk] = slot[j] + 1
        ok = slot < max_obj
        k, slot = k[ok], slot[ok]
        vals = np.stack([cxs - ix - 0.5, cys - iy - 0.5, np.log(np.maximum(ws, 0.25)), np.log(np.maximum(hs, 0.25))], 1)[ok]
        kt, st = torch.tensor(k, device=self.dev), torch.tensor(slot, device=self.dev)
        reg[kt, st] = torch.tensor(vals, dtype=torch.float32, device=self.dev)
        ind[kt, st] = torch.tensor((iy * S + ix)[ok], device=self.dev)
        mask[kt, st] = 1.0
        return hm.view(b, nc, S, S), reg, ind, mask


def focal_loss(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """CenterNet variant of the focal loss (alpha=2, beta=4), normalised by the number of objects."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = gt.ge(0.999).float()
    neg = 1.0 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * neg
    n = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / n


def reg_loss(reg_pred: torch.Tensor, reg_t: torch.Tensor, ind: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    b, c = reg_pred.shape[:2]
    flat = reg_pred.float().view(b, c, -1).permute(0, 2, 1)  # (B, HW, 4)
    got = torch.gather(flat, 1, ind[..., None].expand(-1, -1, c))
    l1 = (got - reg_t).abs() * mask[..., None]
    return l1.sum() / mask.sum().clamp(min=1.0) / c


def export_onnx(net: TinyCenterNet, path: Path, meta: dict) -> None:
    import onnx

    net = net.cpu().eval()
    wrapper = ExportWrapper(net).eval()
    w, h = CANVAS_WH
    torch.onnx.export(
        wrapper, torch.zeros(1, 3, h, w), str(path), opset_version=17, input_names=["images"],
        output_names=["heatmap", "boxes_cxcywh"],
        dynamic_axes={"images": {2: "height", 3: "width"}, "heatmap": {2: "h4", 3: "w4"},
                      "boxes_cxcywh": {2: "h4", 3: "w4"}},
        dynamo=False,
    )
    m = onnx.load(str(path))
    base = {"format": "interceptor-centernet", "classes": ",".join(CLASSES), "stride": str(STRIDE),
            "input_width": str(w), "input_height": str(h), "color": "RGB", "scale": "1/255",
            "size_multiple": "32"}
    for key, val in {**base, **{k: str(v) for k, v in meta.items()}}.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = key, val
    onnx.save(m, str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--minutes", type=float, default=0.0, help="stop early after this wall time (0 = no cap)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--every", type=int, default=10, help="use every N-th frame of the training videos")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--synthetic", default=None, help="folder of rendered jpg + YOLO txt (sitl.render.dataset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="models/detector.onnx")
    ap.add_argument("--int8", action="store_true", help="also write an int8 (dynamic) quantized variant")
    args = ap.parse_args(argv)

    gen = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    fs = load_training_set(Path(args.data), every=args.every,
                           synthetic_dir=Path(args.synthetic) if args.synthetic else None)
    n_obj = np.bincount(np.concatenate([b[:, 0].astype(int) for b in fs.boxes]), minlength=len(CLASSES))
    print(f"training frames {len(fs.images)} ({dict(zip(CLASSES, n_obj.tolist()))} boxes), "
          f"loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    sampler = Sampler(fs.images, fs.boxes, dev, args.crop, gen)
    net = TinyCenterNet(len(CLASSES)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    use_amp = dev.type == "cuda"
    t_start = time.perf_counter()
    cap_s = args.minutes * 60.0 if args.minutes > 0 else math.inf
    step = 0
    for step in range(args.steps):
        frac = max(step / args.steps, (time.perf_counter() - t_start) / cap_s)
        if frac >= 1.0:
            break
        warm = min(1.0, (step + 1) / 300)
        for gparam in opt.param_groups:
            gparam["lr"] = args.lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
        x, (hm, reg, ind, mask), _ = sampler.batch(args.batch)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            logits, rp = net(x)
        lh = focal_loss(logits, hm)
        lr_ = reg_loss(rp, reg, ind, mask)
        loss = lh + lr_
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        if step % 200 == 0:
            print(f"step {step:6d}  loss {loss.item():.3f} (hm {lh.item():.3f} reg {lr_.item():.3f})  "
                  f"lr {opt.param_groups[0]['lr']:.2e}  {time.perf_counter() - t_start:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"train_steps": step + 1, "train_batch": args.batch, "train_every": args.every, "seed": args.seed,
            "train_frames": len(fs.images), "synthetic": bool(args.synthetic)}
    export_onnx(net, out, meta)
    torch.save(net.state_dict(), out.with_suffix(".pt"))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) after {step + 1} steps, "
          f"{time.perf_counter() - t0:.0f} s total", flush=True)
    if args.int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = out.with_name(out.stem + "_int8.onnx")
        quantize_dynamic(str(out), str(q), weight_type=QuantType.QUInt8)
        print(f"wrote {q}")
    (out.with_suffix(".train.json")).write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
