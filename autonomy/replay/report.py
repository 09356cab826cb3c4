"""What a replay writes: ``summary.json``, ``decisions.jsonl`` (the flight recorder's format, from the
pipeline), ``replay.mp4`` (detections, tracks, engagement state and the setpoint it would have sent, drawn on
the recorded frames) and, with matplotlib (the ``plots`` extra), ``trajectory.png`` (the logged flight, the
replayed stretch highlighted, where the engagement changed state) and ``timeline.png`` (detections,
confirmed tracks and engagement state per frame)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from autonomy.engagement import State
from autonomy.replay.run import ReplayResult
from autonomy.runtime.pipeline import StepResult

_STATE_ORDER = tuple(s.value for s in State)


class AnnotatedVideo:
    """``replay.mp4``: the recorded frames with what the pipeline saw and decided."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._w = None

    def frame(self, i: int, t_rel_s: float, img: np.ndarray, step: StepResult | None) -> None:
        import cv2

        out = img.copy() if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if step is None:
            cv2.putText(out, f"t={t_rel_s:7.2f} s  outside the log", (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 0, 255), 1, cv2.LINE_AA)
        else:
            self._draw(out, t_rel_s, step)
        if self._w is None:
            h, w = out.shape[:2]
            self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self._w.write(out)

    @staticmethod
    def _draw(out: np.ndarray, t_rel_s: float, r: StepResult) -> None:
        import cv2

        font = cv2.FONT_HERSHEY_SIMPLEX
        if r.detections is not None:
            for b, s, c in zip(r.detections.xyxy_px, r.detections.scores, r.detections.class_ids):
                if not np.all(np.isfinite(b)):
                    continue
                cv2.rectangle(out, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 255, 255), 1)
                cv2.putText(out, f"{r.detections.class_names[int(c)]} {s:.2f}", (int(b[0]), int(b[3]) + 11), font,
                            0.35, (255, 255, 255), 1, cv2.LINE_AA)
        for tr in r.tracks:
            b = tr.box_xyxy_px
            if b is None or not np.all(np.isfinite(b)):
                continue
            col = (0, 0, 255) if tr.track_id == r.output.engaged_track_id else (0, 220, 0)
            cv2.rectangle(out, (int(b[0]) - 4, int(b[1]) - 4), (int(b[2]) + 4, int(b[3]) + 4), col, 1)
            cv2.putText(out, f"#{tr.track_id} {tr.class_name} {tr.status.value}", (int(b[0]) - 4, int(b[1]) - 7),
                        font, 0.4, col, 1, cv2.LINE_AA)
        cv2.putText(out, f"t={t_rel_s:7.2f} s  {r.state.value.upper()}", (8, 18), font, 0.5, (0, 255, 255), 1,
                    cv2.LINE_AA)
        sp = r.setpoint
        if sp is not None:
            v = sp.acc_ned_mps2 if sp.acc_ned_mps2 is not None else sp.vel_ned_mps
            what = "acc" if sp.acc_ned_mps2 is not None else "vel"
            if v is not None and np.all(np.isfinite(v)):
                cv2.putText(out, f"would send {what} N{v[0]:+6.1f} E{v[1]:+6.1f} D{v[2]:+6.1f}", (8, 36), font, 0.45,
                            (255, 255, 255), 1, cv2.LINE_AA)

    def close(self) -> None:
        if self._w is not None:
            self._w.release()


def write_report(res: ReplayResult, out_dir: Path) -> list[Path]:
    """summary.json and the plots (when matplotlib is installed); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    p = out_dir / "summary.json"
    p.write_text(json.dumps(res.summary(), indent=2))
    written.append(p)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        res.notes.append("matplotlib not installed (extra 'plots'): no plots written")
        p.write_text(json.dumps(res.summary(), indent=2))
        return written
    written += [_trajectory_plot(res, out_dir / "trajectory.png", plt), _timeline_plot(res, out_dir / "timeline.png", plt)]
    return written


def _trajectory_plot(res: ReplayResult, path: Path, plt) -> Path:
    t0 = res.log.t_first_s
    pos = np.array([s.pos_ned_m for s in res.log.states])
    t = np.array([s.t_s for s in res.log.states])
    t_a, t_b = res.steps[0].t_s, res.steps[-1].t_s
    seg = (t >= t_a) & (t <= t_b)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    ax1.plot(pos[:, 1], pos[:, 0], color="0.6", lw=1, label="logged flight")
    ax1.plot(pos[seg, 1], pos[seg, 0], color="C0", lw=2, label="replayed with video")
    ax2.plot(t - t0, -pos[:, 2], color="0.6", lw=1)
    ax2.plot(t[seg] - t0, -pos[seg, 2], color="C0", lw=2)
    for d in res.decisions:
        k = min(int(np.searchsorted(t, d.t_s)), len(t) - 1)
        ax1.plot(pos[k, 1], pos[k, 0], "o", ms=4, color="C3")
        ax1.annotate(d.to_state.value, (pos[k, 1], pos[k, 0]), fontsize=7, color="C3")
        ax2.axvline(d.t_s - t0, color="C3", lw=0.5)
    ax1.set_xlabel("east (m)"), ax1.set_ylabel("north (m)"), ax1.set_aspect("equal", adjustable="datalim")
    ax1.legend(loc="best", fontsize=8), ax1.set_title("top-down (local NED)")
    ax2.set_xlabel("log time (s)"), ax2.set_ylabel("height above origin (m)"), ax2.set_title("height; red: decisions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _timeline_plot(res: ReplayResult, path: Path, plt) -> Path:
    t0 = res.log.t_first_s
    t = np.array([r.t_s - t0 for r in res.steps])
    n_det = np.array([0 if r.detections is None else len(r.detections) for r in res.steps])
    n_conf = np.array([sum(tr.status.value == "confirmed" for tr in r.tracks) for r in res.steps])
    best = np.array([max([float(s) for s in r.detections.scores], default=math.nan) if r.detections is not None
                     else math.nan for r in res.steps])
    st = np.array([_STATE_ORDER.index(r.state.value) if r.state.value in _STATE_ORDER else -1 for r in res.steps])
    fig, axs = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    axs[0].step(t, n_det, where="post", label="detections")
    axs[0].step(t, n_conf, where="post", label="confirmed tracks")
    axs[0].legend(loc="upper right", fontsize=8), axs[0].set_ylabel("count")
    axs[1].plot(t, best, ".", ms=2), axs[1].set_ylabel("best score"), axs[1].set_ylim(0, 1)
    axs[2].step(t, st, where="post", color="C3")
    axs[2].set_yticks(range(len(_STATE_ORDER)), _STATE_ORDER, fontsize=7), axs[2].set_xlabel("log time (s)")
    axs[0].set_title(f"replay of {Path(res.log.path).name}: {len(res.steps)} frames")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
