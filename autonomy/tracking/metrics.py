"""CLEAR-MOT (MOTA, MOTP, ID switches) and identity metrics (IDF1, IDP, IDR) on image boxes.

References: Bernardin & Stiefelhagen, "Evaluating Multiple Object Tracking Performance: The CLEAR MOT
Metrics", EURASIP JIVP 2008 (per-frame matching that keeps last frame's correspondences when still valid);
Ristani et al., "Performance Measures and a Data Set for Multi-Target, Multi-Camera Tracking", ECCV-W 2016
(IDF1 from the optimal one-to-one matching of whole trajectories). Boxes are xyxy pixels; a ground-truth
box and a hypothesis box may match when their IoU >= ``iou_threshold``.

A sequence is a list (one entry per frame) of ``(ids (n,) int, boxes (n, 4) float)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from autonomy.tracking._kernels import INF, lsap

Frame = tuple[np.ndarray, np.ndarray]


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes, (n, 4) x (m, 4) -> (n, m)."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def optimal_pairs(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one pairs of a (n, m) cost matrix (entries >= INF forbidden), any shape."""
    n, m = cost.shape
    if n == 0 or m == 0:
        return []
    if n <= m:
        aug = np.full((n, m + n), INF)
        aug[:, :m] = cost
        aug[np.arange(n), m + np.arange(n)] = INF / 2   # "no match" option, dearer than any real pair
        col = lsap(np.ascontiguousarray(aug))
        return [(r, int(c)) for r, c in enumerate(col) if 0 <= c < m and cost[r, c] < INF]
    return [(r, c) for c, r in optimal_pairs(np.ascontiguousarray(cost.T))]


@dataclass(frozen=True)
class MotResult:
    mota: float
    motp_iou: float      # mean IoU of matched pairs
    idf1: float
    idp: float
    idr: float
    id_switches: int
    false_positives: int
    misses: int
    n_gt: int
    n_hyp: int
    matches: int

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_mot(gt: list[Frame], hyp: list[Frame], iou_threshold: float = 0.5) -> MotResult:
    """CLEAR-MOT and IDF1 of ``hyp`` against ``gt`` (same number of frames)."""
    if len(gt) != len(hyp):
        raise ValueError(f"gt has {len(gt)} frames, hyp {len(hyp)}")
    last_match: dict[int, int] = {}     # gt id -> hyp id of its latest match (for ID switches)
    prev_pairs: dict[int, int] = {}     # gt id -> hyp id matched in the previous frame
    fp = fn = idsw = matches = n_gt = n_hyp = 0
    iou_sum = 0.0
    co: dict[tuple[int, int], int] = {}  # (gt id, hyp id) -> frames with IoU >= thr (for IDF1)
    gt_count: dict[int, int] = {}
    hyp_count: dict[int, int] = {}
    for (gid, gbox), (hid, hbox) in zip(gt, hyp):
        gid = np.asarray(gid, dtype=np.int64).ravel()
        hid = np.asarray(hid, dtype=np.int64).ravel()
        n_gt += len(gid)
        n_hyp += len(hid)
        for g in gid:
            gt_count[int(g)] = gt_count.get(int(g), 0) + 1
        for h in hid:
            hyp_count[int(h)] = hyp_count.get(int(h), 0) + 1
        iou = iou_matrix(gbox, hbox) if len(gid) and len(hid) else np.zeros((len(gid), len(hid)))
        ok = iou >= iou_threshold
        for a, b in zip(*np.nonzero(ok)):
            key = (int(gid[a]), int(hid[b]))
            co[key] = co.get(key, 0) + 1
        # CLEAR-MOT: keep valid correspondences from the previous frame, then match the rest optimally
        pairs: list[tuple[int, int]] = []
        used_g, used_h = set(), set()
        hpos = {int(h): k for k, h in enumerate(hid)}
        for a, g in enumerate(gid):
            h = prev_pairs.get(int(g))
            if h is not None and h in hpos and hpos[h] not in used_h and ok[a, hpos[h]]:
                pairs.append((a, hpos[h]))
                used_g.add(a)
                used_h.add(hpos[h])
        rest_g = [a for a in range(len(gid)) if a not in used_g]
        rest_h = [b for b in range(len(hid)) if b not in used_h]
        if rest_g and rest_h:
            sub = np.where(ok[np.ix_(rest_g, rest_h)], 1.0 - iou[np.ix_(rest_g, rest_h)], INF)
            pairs += [(rest_g[a], rest_h[b]) for a, b in optimal_pairs(sub)]
        prev_pairs = {}
        for a, b in pairs:
            g, h = int(gid[a]), int(hid[b])
            if g in last_match and last_match[g] != h:
                idsw += 1
            last_match[g] = h
            prev_pairs[g] = h
            iou_sum += iou[a, b]
        matches += len(pairs)
        fn += len(gid) - len(pairs)
        fp += len(hid) - len(pairs)
    # IDF1: optimal one-to-one matching of gt and hyp trajectories maximising co-occurring frames
    gids, hids = sorted(gt_count), sorted(hyp_count)
    idtp = 0
    if gids and hids and co:
        gi = {g: k for k, g in enumerate(gids)}
        hi = {h: k for k, h in enumerate(hids)}
        cnt = np.zeros((len(gids), len(hids)))
        for (g, h), c in co.items():
            cnt[gi[g], hi[h]] = c
        cost = np.where(cnt > 0, -cnt, INF)
        idtp = int(sum(cnt[a, b] for a, b in optimal_pairs(cost)))
    idf1 = 2 * idtp / (n_gt + n_hyp) if n_gt + n_hyp else 1.0
    return MotResult(
        mota=1.0 - (fn + fp + idsw) / n_gt if n_gt else float("nan"),
        motp_iou=iou_sum / matches if matches else float("nan"),
        idf1=idf1, idp=idtp / n_hyp if n_hyp else float("nan"), idr=idtp / n_gt if n_gt else float("nan"),
        id_switches=idsw, false_positives=fp, misses=fn, n_gt=n_gt, n_hyp=n_hyp, matches=matches,
    )
