import numpy as np
import pytest

from autonomy.runtime.recorder import FlightRecorder, RecorderError, read_records
from autonomy.runtime.timing import StageTimer
from autonomy.types import TrackStatus


def test_round_trip_with_arrays_enums_and_nan(tmp_path):
    p = tmp_path / "rec.jsonl"
    with FlightRecorder(p) as rec:
        rec.write(0.0, "state", pos_ned_m=np.array([1.0, 2.0, -3.0]), armed=np.bool_(True))
        rec.write(0.1, "tracks", status=TrackStatus.CONFIRMED, cov=np.eye(2), bad=float("nan"))
        rec.write(0.2, "decision", reason="authorized")
    recs = list(read_records(p))
    assert [r["kind"] for r in recs] == ["state", "tracks", "decision"]
    assert recs[0]["pos_ned_m"] == [1.0, 2.0, -3.0] and recs[0]["armed"] is True
    assert recs[1]["status"] == "confirmed" and recs[1]["cov"] == [[1.0, 0.0], [0.0, 1.0]]
    assert recs[1]["bad"] is None
    assert [r["t_s"] for r in read_records(p, kinds={"decision"})] == [0.2]


def test_truncated_tail_is_tolerated_but_corruption_inside_is_not(tmp_path):
    p = tmp_path / "rec.jsonl"
    with FlightRecorder(p) as rec:
        for i in range(5):
            rec.write(i, "state", i=i)
    text = p.read_text()
    p.write_text(text[:-7])  # power cut in the middle of the last record
    assert [r["i"] for r in read_records(p)] == [0, 1, 2, 3]
    lines = text.splitlines()
    lines[1] = lines[1][:10]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecorderError, match="corrupt record"):
        list(read_records(p))
    with pytest.raises(RecorderError, match="not found"):
        list(read_records(tmp_path / "none.jsonl"))


def test_stage_timer_percentiles_and_ring():
    t = StageTimer(capacity=100)
    for i in range(1, 201):
        t.record("detect", i / 1000.0)
    s = t.summary("detect")
    assert s.count == 200
    # only the last 100 samples (101..200 ms) are kept
    assert 150.0 <= s.p50_ms <= 151.0 and s.max_ms == pytest.approx(200.0)
    assert np.isnan(t.summary("absent").p50_ms)
