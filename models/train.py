"""Train TinyCenterNet on the real training split (+ optional synthetic renders) and export ONNX.

Reproduce the shipped model (v1 layout = ``ArchSpec()`` defaults; one H100, ~7 min; see models/MODEL_CARD.md):
    for s in $(seq 0 15); do python -m sitl.render.dataset --out /tmp/syn/s$s --n 160 --seed $((100+s)) & done; wait
    python -m models.train --data ../shared/data --device cuda --steps 4373 --batch 384 --lr 4e-3 --every 2 \
        --synthetic /tmp/syn/s* --out models/detector.onnx
(the shipped run used ``--steps 60000 --minutes 6.0``: a wall-time-capped cosine schedule that stopped at step
4373; ``--steps 4373`` gives the same schedule by step count. On CUDA the precision and memory layout are now
chosen by a short speed test (``autotune``); the shipped run used bf16 autocast, NCHW.)
The session-2 candidate (v2 patch-stem layout, hard negatives; NOT shipped, see the model card):
    python -m sitl.render.dataset --out /tmp/syn --n 1600 --seed 100 --workers 16
    python -m models.train --data ../shared/data --device cuda --steps 10791 --batch 384 --lr 4e-3 --every 2 \
        --synthetic /tmp/syn --arch v2 --conf-neg-weight 3 --out /tmp/candidate.onnx
CPU (slower, fewer frames, same recipe):
    python -m models.train --data ../shared/data --device cpu --steps 1500 --batch 16 --every 10 \
        --out models/detector.onnx

Training samples are 256x256 crops taken from whole 640x512 canvases with a random affine (scale
0.6-1.6, translation, horizontal flip) via ``grid_sample``, 60 % centred near a labelled object (frames
chosen class-balanced by their first box, so confusers are seen as often as drones), plus photometric jitter
(brightness, contrast, grayscale, noise). Loss: CenterNet focal loss on the per-class heatmap + L1 on centre
offset and log size + an IoU loss on the decoded box, at the object's centre cell. Hard negatives: the drone
channel's negative loss is weighted x``--conf-neg-weight`` on bird/airplane/helicopter objects.
``--holdout-val`` leaves the validation clips (a carve-out of train) out, for comparing runs without ever
looking at the held-out clips.
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

from models.arch import (
    STRIDE,
    V2_PATCH,
    ArchSpec,
    ExportWrapper,
    TinyCenterNet,
    freeze_batchnorm,
    load_onnx_weights,
)
from models.data import CANVAS_WH, load_training_set, sky_crop_clips, sky_crops
from models.split import CLASSES, DEFAULT_DATA_ROOT


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
                 gen: np.random.Generator, frame_weight: np.ndarray | None = None) -> None:
        self.dev = device
        self.images = torch.from_numpy(images).to(device)  # (N, H, W, 3) uint8
        n, k = len(images), self.MAX_BOXES
        pad = np.zeros((n, k, 5), np.float32)
        count = np.zeros(n, np.int64)
        for i, b in enumerate(boxes):
            m = min(len(b), k)
            pad[i, :m] = b[:m]
            count[i] = m
        self.boxes_np = pad
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
        if frame_weight is not None:  # e.g. synthetic frames up-weighted (--synthetic-weight)
            w = w * np.asarray(frame_weight, float)[self.with_boxes]
        self.p_centred = w / w.sum()
        self.H, self.W = images.shape[1:3]
        # source window that holds any crop at the smallest scale (0.6), even-sized, within the canvas
        self.win = int(min(self.H, self.W, 2 * math.ceil(crop / 0.6 / 2) + 8))

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
        sel = self.boxes_np[idx, j]  # host copy: no device sync, so the GPU keeps the previous step queued
        cx = np.where(centred, 0.5 * (sel[:, 1] + sel[:, 3]) + g.uniform(-0.8, 0.8, b) * half, cx)
        cy = np.where(centred, 0.5 * (sel[:, 2] + sel[:, 4]) + g.uniform(-0.8, 0.8, b) * half, cy)
        theta = np.zeros((b, 2, 3), np.float32)
        # Gather a WIN x WIN window around each crop centre first (the crop never needs more than
        # C / 0.6 px of source), then resample only that: ~4x fewer bytes than sampling whole canvases.
        win = self.win
        ox = np.clip(np.round(cx - win / 2), 0, W - win).astype(np.int64)
        oy = np.clip(np.round(cy - win / 2), 0, H - win).astype(np.int64)
        theta[:, 0, 0] = C * flip / (scale * win)
        theta[:, 0, 2] = 2 * (cx - ox) / win - 1
        theta[:, 1, 1] = C / (scale * win)
        theta[:, 1, 2] = 2 * (cy - oy) / win - 1
        gray = g.random(b) < 0.2
        contrast = g.uniform(0.6, 1.4, b)
        bright = g.uniform(-0.15, 0.15, b)
        noise = g.uniform(0, 0.03, b)
        # every per-sample number in ONE host->device copy (pinned, asynchronous on CUDA): a pageable copy
        # would wait for the previous step's GPU work and serialise the CPU-side sampling with it
        host = np.stack([idx, ox, oy, *theta.reshape(b, 6).T, gray, contrast, bright, noise, scale, flip, cx, cy,
                         self.count[idx]], 1).astype(np.float64)
        ht = torch.from_numpy(host)
        if dev.type == "cuda":
            ht = ht.pin_memory().to(dev, non_blocking=True)
        else:
            ht = ht.to(dev)
        idx_t = ht[:, 0].long()
        ar = torch.arange(win, device=dev)
        ys = ht[:, 2].long()[:, None] + ar[None]
        xs = ht[:, 1].long()[:, None] + ar[None]
        patch = self.images[idx_t[:, None, None], ys[:, :, None], xs[:, None, :]]  # (b, win, win, 3) uint8
        src = patch.permute(0, 3, 1, 2).float() / 255.0
        grid = F.affine_grid(ht[:, 3:9].float().view(b, 2, 3), (b, 3, C, C), align_corners=False)
        x = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # photometric jitter
        col = lambda k: ht[:, k].float().view(b, 1, 1, 1)
        xm = x.mean(1, keepdim=True).expand_as(x)
        x = torch.where(col(9) > 0.5, xm, x)
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * col(10) + mean + col(11)
        x = (x + col(12) * torch.randn_like(x)).clamp(0, 1)
        # boxes into crop pixels: Xo = (X - cx) * s * f + C/2
        bx = self.boxes[idx_t]  # (b, K, 5)
        valid = torch.arange(self.MAX_BOXES, device=dev)[None] < ht[:, 17].long()[:, None]
        s_, f_, cx_, cy_ = (ht[:, k].float()[:, None] for k in (13, 14, 15, 16))
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
        conf = hm[:, 1:].amax(1, keepdim=True) if nc > 1 else torch.zeros_like(hm[:, :1])  # (b,1,S,S)
        return hm, reg, ind, valid.float(), conf


def focal_loss(logits: torch.Tensor, gt: torch.Tensor, conf: torch.Tensor | None = None,
               conf_neg_weight: float = 1.0) -> torch.Tensor:
    """CenterNet variant of the focal loss (alpha=2, beta=4), normalised by the number of objects.

    Hard negatives: where a confuser (bird/airplane/helicopter) lies, ``conf`` (B,1,S,S) is its Gaussian; the
    negative term of the *drone* channel (0) there is weighted up to ``conf_neg_weight`` (1 = plain loss).
    """
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = gt.ge(0.999).float()
    neg = 1.0 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * neg
    if conf is not None and conf_neg_weight != 1.0:
        wmap = torch.ones_like(gt)
        wmap[:, 0:1] = 1.0 + (conf_neg_weight - 1.0) * conf
        neg_loss = neg_loss * wmap
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


def parse_arch(text: str) -> ArchSpec:
    """'c8=64,fpn=64' -> ArchSpec with those fields changed (integers); a leading 'v2' starts from V2_PATCH."""
    kw: dict[str, int] = {}
    for part in filter(None, (t.strip() for t in text.split(","))):
        if part == "v2":
            kw.update(V2_PATCH)
            continue
        key, _, val = part.partition("=")
        if key not in ArchSpec.__dataclass_fields__:
            raise SystemExit(f"--arch: unknown field {key!r} (fields: {', '.join(ArchSpec.__dataclass_fields__)})")
        kw[key] = int(val)
    return ArchSpec(**kw)


def autotune(net: TinyCenterNet, sampler: Sampler, batch: int, conf_neg_weight: float) -> tuple[bool, bool]:
    """On CUDA, time forward+backward for bf16 autocast on/off x channels_last on/off; return the fastest
    (amp, channels_last). Depthwise convolutions are very sensitive to this; the maths is the same."""
    import copy

    x, (hm, reg, ind, mask, conf) = sampler.batch(batch)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        sampler.batch(batch)
    torch.cuda.synchronize()
    print(f"autotune: sampler {(time.perf_counter() - t0) / 5 * 1e3:.1f} ms/batch", flush=True)
    best, best_t = (True, False), math.inf
    for amp in (True, False):
        for cl in (False, True):
            m = copy.deepcopy(net)
            xx = x
            if cl:
                m = m.to(memory_format=torch.channels_last)
                xx = x.contiguous(memory_format=torch.channels_last)
            ts = []
            for i in range(8):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    lg, rp = m(xx)
                loss = focal_loss(lg, hm, conf, conf_neg_weight) + reg_loss(rp, reg, ind, mask)
                loss.backward()
                torch.cuda.synchronize()
                if i >= 3:
                    ts.append(time.perf_counter() - t0)
            t = float(np.median(ts))
            print(f"autotune: amp={amp} channels_last={cl}: {t * 1e3:.1f} ms fwd+bwd", flush=True)
            if t < best_t:
                best, best_t = (amp, cl), t
    return best


def onnx_init_error(net: TinyCenterNet, onnx_path: str, seed: int = 0) -> float:
    """Max abs difference of the heatmap between ``net`` (eval mode, CPU, in the export wrapper) and the ONNX
    file it was loaded from, on one seeded 256x320 image: ~1e-6 when :func:`load_onnx_weights` matched."""
    import copy

    import onnxruntime as ort

    x = np.random.default_rng(seed).random((1, 3, 256, 320), dtype=np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    hm_file = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        hm_net = ExportWrapper(copy.deepcopy(net).cpu().eval())(torch.from_numpy(x))[0].numpy()
    return float(np.abs(hm_net - hm_file).max())


def export_onnx(net: TinyCenterNet, path: Path, meta: dict) -> None:
    import onnx

    net = net.cpu().to(memory_format=torch.contiguous_format).eval()
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
    ap.add_argument("--data", default=str(DEFAULT_DATA_ROOT))
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--minutes", type=float, default=0.0, help="stop early after this wall time (0 = no cap)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--every", type=int, default=10, help="use every N-th frame of the training videos")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--synthetic", nargs="*", default=None,
                    help="folder(s) of rendered jpg + YOLO txt (python -m sitl.render.dataset --out DIR ...)")
    ap.add_argument("--synthetic-weight", type=float, default=1.0,
                    help="how much more often a centred crop is taken from a synthetic frame than from a real one "
                         "of the same class (1 = as often)")
    ap.add_argument("--sky-crops", type=int, default=0,
                    help="add this many label-free 320x256 windows of real training drone frames, upscaled x2 as the "
                         "runtime does (models.data.sky_crops; validation and held-out clips never used): real sky, "
                         "cloud and tree line that must stay silent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="models/detector.onnx")
    ap.add_argument("--int8", action="store_true", help="also write an int8 (dynamic) quantized variant")
    ap.add_argument("--arch", default="", help="ArchSpec overrides, e.g. 'c8=64,fpn=64', or 'v2' (models/arch.py "
                                                 "V2_PATCH), or 'v2,head=16'; empty = the shipped v1 layout")
    ap.add_argument("--conf-neg-weight", type=float, default=1.0,
                    help="weight of the drone channel's negative loss on bird/airplane/helicopter objects")
    ap.add_argument("--holdout-val", action="store_true",
                    help="leave the validation clips (models/split.py VALIDATION_VIDEOS, part of TRAIN) out of "
                         "training, so that runs can be compared on them (never on the held-out clips)")
    ap.add_argument("--init", default=None,
                    help="start from these weights (a .pt written next to an earlier run's .onnx, or an exported "
                         ".onnx such as the shipped models/detector.onnx, same --arch): fine-tuning, e.g. on new "
                         "renders, instead of training from scratch; from an .onnx the BatchNorms stay frozen")
    args = ap.parse_args(argv)

    gen = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    extra = ()
    if args.sky_crops > 0:
        extra = (sky_crops(Path(args.data), sky_crop_clips(Path(args.data), "train"), args.sky_crops, args.seed + 1),)
        print(f"{len(extra[0].images)} sky crops added", flush=True)
    fs = load_training_set(Path(args.data), every=args.every, synthetic_dirs=[Path(p) for p in args.synthetic or []],
                           exclude_val=args.holdout_val, extra=extra)
    n_obj = np.bincount(np.concatenate([b[:, 0].astype(int) for b in fs.boxes]), minlength=len(CLASSES))
    print(f"training frames {len(fs.images)} ({dict(zip(CLASSES, n_obj.tolist()))} boxes), "
          f"loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    frame_weight = None
    if args.synthetic_weight != 1.0:
        frame_weight = np.where([src.startswith("synthetic:") for src in fs.source], args.synthetic_weight, 1.0)
    sampler = Sampler(fs.images, fs.boxes, dev, args.crop, gen, frame_weight)
    spec = parse_arch(args.arch)
    net = TinyCenterNet(len(CLASSES), spec).to(dev)
    frozen_bn = False
    if args.init and args.init.endswith(".onnx"):
        try:
            load_onnx_weights(net, args.init)
            diff = onnx_init_error(net, args.init)
        except Exception as exc:  # noqa: BLE001 - a missing or corrupt file: onnx and onnxruntime raise their own types
            raise SystemExit(f"--init {args.init}: cannot load these weights into --arch {args.arch!r}: {exc}")
        if diff > 1e-3:
            raise SystemExit(f"--init {args.init}: the loaded network differs from the file by {diff:.3g} "
                             "(heatmap, max abs): not the same layout")
        net = net.to(dev)
        frozen_bn = True
        print(f"initialised from {args.init} (folded BatchNorms, kept in eval mode; heatmap max diff {diff:.1e})",
              flush=True)
    elif args.init:
        try:
            net.load_state_dict(torch.load(args.init, map_location=dev, weights_only=True))
        except (OSError, RuntimeError) as exc:
            raise SystemExit(f"--init {args.init}: cannot load these weights into --arch {args.arch!r}: {exc}")
        print(f"initialised from {args.init}", flush=True)
    print(f"arch {spec.to_json()}, {sum(p.numel() for p in net.parameters())} parameters", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    use_amp, channels_last = dev.type == "cuda", False
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        use_amp, channels_last = autotune(net, sampler, args.batch, args.conf_neg_weight)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        print(f"using amp={use_amp} channels_last={channels_last}", flush=True)
    net.train()
    if frozen_bn:
        freeze_batchnorm(net)
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
        x, (hm, reg, ind, mask, conf) = sampler.batch(args.batch)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            logits, rp = net(x)
        lh = focal_loss(logits, hm, conf, args.conf_neg_weight)
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
            "train_frames": len(fs.images), "synthetic": bool(args.synthetic), "lr": args.lr,
            "crop": args.crop, "conf_neg_weight": args.conf_neg_weight, "holdout_val": args.holdout_val,
            "synthetic_weight": args.synthetic_weight, "sky_crops": args.sky_crops,
            "arch": spec.to_json(), "train_seconds": round(time.perf_counter() - t_start, 1),
            "init": Path(args.init).name if args.init else None}
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
