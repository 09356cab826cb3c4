"""Train TinyCenterNet on the real training split (+ optional synthetic renders) and export ONNX.

Reproduce the shipped model (one H100, ~7 min; see models/MODEL_CARD.md):
    for s in $(seq 0 15); do python -m sitl.render.dataset --out /tmp/syn/s$s --n 160 --seed $((100+s)) & done; wait
    python -m models.train --data ../shared/data --device cuda --steps 4373 --batch 384 --lr 4e-3 --every 2 \
        --synthetic /tmp/syn/s* --out models/detector.onnx
(the shipped run used ``--steps 60000 --minutes 6.0``: a wall-time-capped cosine schedule that stopped at step
4373; ``--steps 4373`` gives the same schedule by step count.)
CPU (slower, fewer frames, same recipe):
    python -m models.train --data ../shared/data --device cpu --steps 1500 --batch 16 --every 10 \
        --out models/detector.onnx

Training samples are 256x256 crops taken from whole 640x512 canvases with a random affine (scale
0.6-1.6, translation, horizontal flip) via ``grid_sample``, 60 % centred near a labelled object (frames
chosen class-balanced by their first box, so confusers are seen as often as drones), plus photometric jitter
(brightness, contrast, grayscale, noise). Loss: CenterNet focal loss on the per-class heatmap + L1 on centre
offset and log size + an IoU loss on the decoded box, at the object's centre cell.
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
    """Builds augmented batches on ``device`` from frames kept on that device (all vectorised in torch)."""

    MAX_BOXES = 8

    def __init__(self, images: np.ndarray, boxes: list[np.ndarray], device: torch.device, crop: int,
                 gen: np.random.Generator) -> None:
        self.dev = device
        self.images = torch.from_numpy(images).to(device)  # (N, H, W, 3) uint8
        n, k = len(images), self.MAX_BOXES
        pad = np.zeros((n, k, 5), np.float32)
        count = np.zeros(n, np.int64)
        for i, b in enumerate(boxes):
            m = min(len(b), k)
            pad[i, :m] = b[:m]
            count[i] = m
        self.boxes = torch.from_numpy(pad).to(device)
        self.count = count
        self.crop = crop
        self.gen = gen
        self.n = n
        self.with_boxes = np.flatnonzero(count > 0)
        # class-balanced choice of the frame a centred crop is taken from (by the class of its first box),
        # so that the rarer confusers (airplane, helicopter) are seen about as often as drones
        first = pad[self.with_boxes, 0, 0].astype(np.int64)
        freq = np.bincount(first, minlength=len(CLASSES)).astype(float)
        w = 1.0 / np.maximum(freq[first], 1.0)
        self.p_centred = w / w.sum()
        self.H, self.W = images.shape[1:3]

    def batch(self, b: int):
        g, C, W, H, dev = self.gen, self.crop, self.W, self.H, self.dev
        centred = g.random(b) < 0.6
        idx = np.where(centred, g.choice(self.with_boxes, b, p=self.p_centred), g.integers(0, self.n, b))
        scale = np.exp(g.uniform(np.log(0.6), np.log(1.6), b))
        flip = np.where(g.random(b) < 0.5, -1.0, 1.0)
        half = C / (2 * scale)
        cx = g.uniform(0, W, b)
        cy = g.uniform(0, H, b)
        j = np.floor(g.random(b) * np.maximum(self.count[idx], 1)).astype(np.int64)
        sel = self.boxes[torch.from_numpy(idx).to(dev), torch.from_numpy(j).to(dev)].cpu().numpy()
        cx = np.where(centred, 0.5 * (sel[:, 1] + sel[:, 3]) + g.uniform(-0.8, 0.8, b) * half, cx)
        cy = np.where(centred, 0.5 * (sel[:, 2] + sel[:, 4]) + g.uniform(-0.8, 0.8, b) * half, cy)
        theta = np.zeros((b, 2, 3), np.float32)
        theta[:, 0, 0] = C * flip / (scale * W)
        theta[:, 0, 2] = 2 * cx / W - 1
        theta[:, 1, 1] = C / (scale * H)
        theta[:, 1, 2] = 2 * cy / H - 1
        idx_t = torch.from_numpy(idx).to(dev)
        src = self.images[idx_t].permute(0, 3, 1, 2).float() / 255.0
        grid = F.affine_grid(torch.from_numpy(theta).to(dev), (b, 3, C, C), align_corners=False)
        x = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # photometric jitter
        gray = torch.from_numpy(g.random(b) < 0.2).to(dev)
        xm = x.mean(1, keepdim=True).expand_as(x)
        x = torch.where(gray.view(b, 1, 1, 1), xm, x)
        contrast = torch.from_numpy(g.uniform(0.6, 1.4, (b, 1, 1, 1)).astype(np.float32)).to(dev)
        bright = torch.from_numpy(g.uniform(-0.15, 0.15, (b, 1, 1, 1)).astype(np.float32)).to(dev)
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + bright
        noise = torch.from_numpy(g.uniform(0, 0.03, (b, 1, 1, 1)).astype(np.float32)).to(dev)
        x = (x + noise * torch.randn_like(x)).clamp(0, 1)
        # boxes into crop pixels: Xo = (X - cx) * s * f + C/2
        bx = self.boxes[idx_t]  # (b, K, 5)
        valid = torch.arange(self.MAX_BOXES, device=dev)[None] < torch.from_numpy(self.count[idx]).to(dev)[:, None]
        t = lambda a: torch.from_numpy(np.asarray(a, np.float32)).to(dev)[:, None]
        s_, f_, cx_, cy_ = t(scale), t(flip), t(cx), t(cy)
        xa = (bx[..., 1] - cx_) * s_ * f_ + C / 2
        xb = (bx[..., 3] - cx_) * s_ * f_ + C / 2
        ya = (bx[..., 2] - cy_) * s_ + C / 2
        yb = (bx[..., 4] - cy_) * s_ + C / 2
        x0, x1 = torch.minimum(xa, xb), torch.maximum(xa, xb)
        area = (x1 - x0) * (yb - ya)
        x0c, x1c, y0c, y1c = x0.clamp(0, C), x1.clamp(0, C), ya.clamp(0, C), yb.clamp(0, C)
        vis = (x1c - x0c) * (y1c - y0c) / area.clamp(min=1e-6)
        valid = valid & (vis > 0.5) & (x1c - x0c >= 2) & (y1c - y0c >= 2)
        boxes = torch.stack([bx[..., 0], x0c, y0c, x1c, y1c], -1)
        return x, self.targets(boxes, valid)

    def targets(self, boxes: torch.Tensor, valid: torch.Tensor):
        """Heatmap (B,C,S,S), reg targets (B,K,4) [dx, dy, log w, log h] in stride units, ind (B,K), mask."""
        nc, S = len(CLASSES), self.crop // STRIDE
        cxs = 0.5 * (boxes[..., 1] + boxes[..., 3]) / STRIDE
        cys = 0.5 * (boxes[..., 2] + boxes[..., 4]) / STRIDE
        ws = (boxes[..., 3] - boxes[..., 1]) / STRIDE
        hs = (boxes[..., 4] - boxes[..., 2]) / STRIDE
        ix = cxs.floor().clamp(0, S - 1)
        iy = cys.floor().clamp(0, S - 1)
        sx = (ws / 6.0).clamp(min=0.6)
        sy = (hs / 6.0).clamp(min=0.6)
        grid = torch.arange(S, device=self.dev, dtype=torch.float32)
        gx = torch.exp(-0.5 * ((grid - ix[..., None]) / sx[..., None]) ** 2)  # (b,k,S)
        gy = torch.exp(-0.5 * ((grid - iy[..., None]) / sy[..., None]) ** 2)
        gauss = gy[..., :, None] * gx[..., None, :] * valid[..., None, None]  # (b,k,S,S)
        onehot = F.one_hot(boxes[..., 0].long().clamp(0, nc - 1), nc).float()  # (b,k,C)
        hm = (onehot[..., None, None] * gauss[:, :, None]).amax(1)  # (b,C,S,S)
        reg = torch.stack([cxs - ix - 0.5, cys - iy - 0.5, ws.clamp(min=0.25).log(), hs.clamp(min=0.25).log()], -1)
        ind = (iy * S + ix).long()
        return hm, reg, ind, valid.float()


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
    """L1 on offset (weight 1) and log size (0.5) plus an IoU loss on the decoded box, at centre cells."""
    b, c = reg_pred.shape[:2]
    flat = reg_pred.float().reshape(b, c, -1).permute(0, 2, 1)  # (B, HW, 4)
    got = torch.gather(flat, 1, ind[..., None].expand(-1, -1, c))
    w = torch.tensor([1.0, 1.0, 0.5, 0.5], device=got.device)
    n = mask.sum().clamp(min=1.0)
    l1 = ((got - reg_t).abs() * w * mask[..., None]).sum() / n
    pw, ph = got[..., 2].clamp(-4, 6).exp(), got[..., 3].clamp(-4, 6).exp()
    tw, th = reg_t[..., 2].exp(), reg_t[..., 3].exp()
    ix = (torch.minimum(got[..., 0] + pw / 2, reg_t[..., 0] + tw / 2)
          - torch.maximum(got[..., 0] - pw / 2, reg_t[..., 0] - tw / 2)).clamp(min=0)
    iy = (torch.minimum(got[..., 1] + ph / 2, reg_t[..., 1] + th / 2)
          - torch.maximum(got[..., 1] - ph / 2, reg_t[..., 1] - th / 2)).clamp(min=0)
    inter = ix * iy
    iou = inter / (pw * ph + tw * th - inter).clamp(min=1e-6)
    return l1 + ((1 - iou) * mask).sum() / n


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
    ap.add_argument("--synthetic", nargs="*", default=None,
                    help="folder(s) of rendered jpg + YOLO txt (python -m sitl.render.dataset --out DIR ...)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="models/detector.onnx")
    ap.add_argument("--int8", action="store_true", help="also write an int8 (dynamic) quantized variant")
    args = ap.parse_args(argv)

    gen = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    fs = load_training_set(Path(args.data), every=args.every,
                           synthetic_dirs=[Path(p) for p in args.synthetic or []])
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
        x, (hm, reg, ind, mask) = sampler.batch(args.batch)
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
