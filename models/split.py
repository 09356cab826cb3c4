"""The train / held-out split of the real videos, by WHOLE video (never frames of one video in both).

The split is fixed here in code and mirrored in ``models/split.json`` (written by ``python -m models.split``)
and in MODEL_CARD.md. Held-out videos were picked per (sensor, class, distance bin) so that every distance
bin of the visible drone clips has 4 held-out videos (with each drone type present), and each confuser class
(bird / airplane / helicopter) has held-out clips at close, medium and distant range; groups of a single
video stay in training. Anti-UAV: the 85 labelled frames of one 2019 session are training data, the 2020
tracking sequence ``seq18`` (a tiny drone near telecom towers) is held out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

SVANSTROM = "svanstrom_drone_detection_dataset"
# the shared data folder beside the checkout (every models CLI's --data default)
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSES: tuple[str, ...] = ("drone", "bird", "airplane", "helicopter")
_LABEL_TO_CLASS = {"DRONE": 0, "BIRD": 1, "AIRPLANE": 2, "HELICOPTER": 3}

HELDOUT_VIDEOS: frozenset[str] = frozenset(
    {
        # visible drones: 4 per distance bin
        "V_DRONE_023", "V_DRONE_054", "V_DRONE_081", "V_DRONE_096",        # CLOSE
        "V_DRONE_012", "V_DRONE_047", "V_DRONE_076", "V_DRONE_104",        # MEDIUM
        "V_DRONE_010", "V_DRONE_034", "V_DRONE_056", "V_DRONE_112",        # DISTANT
        # visible confusers: one per class and bin
        "V_BIRD_020", "V_BIRD_032", "V_BIRD_036",
        "V_AIRPLANE_018", "V_AIRPLANE_015", "V_AIRPLANE_024",
        "V_HELICOPTER_008", "V_HELICOPTER_013", "V_HELICOPTER_017",
        # thermal IR: one drone clip per bin, confusers where the bin has >= 2 clips
        "IR_DRONE_034", "IR_DRONE_063", "IR_DRONE_106",
        "IR_BIRD_032", "IR_BIRD_001", "IR_AIRPLANE_044", "IR_HELICOPTER_035",
    }
)
HELDOUT_EXTRA: tuple[str, ...] = ("anti_uav_ir_track/seq18",)
# A VALIDATION carve-out of the TRAIN clips (never held-out ones): training runs that compare variants leave
# these out (``models.train --holdout-val``) and are compared on them (``models.evaluate --split val``), so
# that no choice is ever made on the held-out clips. One clip per visible drone bin, one visible bird and
# airplane, one IR drone.
VALIDATION_VIDEOS: frozenset[str] = frozenset(
    {"V_DRONE_086", "V_DRONE_085", "V_DRONE_105", "V_BIRD_040", "V_AIRPLANE_032", "IR_DRONE_087"}
)
assert not VALIDATION_VIDEOS & HELDOUT_VIDEOS
TRAIN_EXTRA: tuple[str, ...] = ("anti_uav_ir_yolo",)


@dataclass(frozen=True)
class VideoInfo:
    """One Svanström clip: ``name`` like ``V_DRONE_001``; ``sensor`` 'visible'|'ir'; ``cls`` class name
    (lower case); ``distance_bin`` 'CLOSE'|'MEDIUM'|'DISTANT'; ``frames`` count; size in pixels."""

    name: str
    sensor: str
    cls: str
    distance_bin: str
    frames: int
    width_px: int
    height_px: int

    @property
    def heldout(self) -> bool:
        return self.name in HELDOUT_VIDEOS

    def video_path(self, data_root: Path) -> Path:
        sub = "videos_visible" if self.sensor == "visible" else "videos_ir"
        return Path(data_root) / SVANSTROM / sub / f"{self.name}.mp4"

    def labels_path(self, data_root: Path) -> Path:
        sub = "labels_csv_visible" if self.sensor == "visible" else "labels_csv_ir"
        return Path(data_root) / SVANSTROM / sub / f"{self.name}_LABELS.csv"


def list_videos(data_root: Path) -> list[VideoInfo]:
    """All Svanström clips listed in ``videos_index.csv`` under ``data_root`` (the shared data folder)."""
    index = Path(data_root) / SVANSTROM / "videos_index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found: is {data_root} the shared data folder?")
    out = []
    with index.open(newline="") as fh:
        for row in csv.DictReader(fh):
            out.append(
                VideoInfo(
                    row["video"], row["sensor"], row["cls"].lower(), row["distance_bin"],
                    int(row["frames"]), int(row["width"]), int(row["height"]),
                )
            )
    return out


def split_videos(data_root: Path) -> tuple[list[VideoInfo], list[VideoInfo]]:
    """(train, heldout) lists of Svanström clips."""
    vids = list_videos(data_root)
    return [v for v in vids if not v.heldout], [v for v in vids if v.heldout]


def read_labels(info: VideoInfo, data_root: Path) -> dict[int, list[tuple[int, float, float, float, float]]]:
    """Per-frame boxes ``{frame: [(class_id, x0, y0, x1, y1), ...]}`` in 0-based pixels of the video.

    The CSV stores MATLAB 1-based top-left x, y plus width, height (see SOURCES.md), hence the -1.
    """
    out: dict[int, list[tuple[int, float, float, float, float]]] = {}
    with info.labels_path(data_root).open(newline="") as fh:
        for row in csv.DictReader(fh):
            x0 = float(row["x"]) - 1.0
            y0 = float(row["y"]) - 1.0
            w, h = float(row["width"]), float(row["height"])
            x0c, y0c = max(x0, 0.0), max(y0, 0.0)
            x1c, y1c = min(x0 + w, info.width_px), min(y0 + h, info.height_px)
            if x1c - x0c < 1 or y1c - y0c < 1:
                continue
            out.setdefault(int(row["frame"]), []).append((_LABEL_TO_CLASS[row["label"]], x0c, y0c, x1c, y1c))
    return out


def split_document(data_root: Path) -> dict:
    train, held = split_videos(data_root)

    def rows(vs: list[VideoInfo]) -> list[dict]:
        return [{"video": v.name, "sensor": v.sensor, "class": v.cls, "distance_bin": v.distance_bin} for v in vs]

    return {
        "rule": "split by whole video; held-out = models/split.py HELDOUT_VIDEOS",
        "validation_subset_of_train": sorted(VALIDATION_VIDEOS),
        "train": rows(train) + [{"video": x} for x in TRAIN_EXTRA],
        "heldout": rows(held) + [{"video": x} for x in HELDOUT_EXTRA],
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="write models/split.json from the split defined in models/split.py")
    ap.add_argument("--data", default=str(DEFAULT_DATA_ROOT))
    ap.add_argument("--out", default=str(Path(__file__).with_name("split.json")))
    args = ap.parse_args(argv)
    doc = split_document(Path(args.data))
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"train {len(doc['train'])} videos, held-out {len(doc['heldout'])} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
