"""`autonomy replay`: a recorded flight log plus its camera video through the real pipeline (real model,
real tracker, real engagement machine) on the log clock; the log readers on real PX4 / ArduPilot logs, and bad
input (missing, empty, truncated, garbage files; bad cue files) as one clear ReplayError or exit 2."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from autonomy.replay import ReplayError, read_vehicle_log
from autonomy.replay.cli import main as replay_main
from autonomy.replay.logs import read_cues_csv
from autonomy.types import Autopilot

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def logs(shared_data):
    return shared_data / "logs"


@pytest.fixture(scope="module")
def flight_a(logs):
    tl, ul = logs / "px4_sih" / "flightA.tlog", logs / "px4_sih" / "flightA.ulg"
    if not (tl.is_file() and ul.is_file()):
        pytest.skip("px4_sih flightA logs are absent")
    return read_vehicle_log(tl), read_vehicle_log(ul)


def test_tlog_and_ulog_of_one_flight_agree(flight_a):
    tl, ul = flight_a
    assert tl.autopilot is Autopilot.PX4 and ul.autopilot is Autopilot.PX4
    assert len(tl.states) > 2000 and len(ul.states) > 9000
    # the two recorders of one flight: same duration and extents (the square at 10 m of the README)
    assert abs((tl.t_last_s - tl.t_first_s) - (ul.t_last_s - ul.t_first_s)) < 3.0
    pa, pb = np.array([s.pos_ned_m for s in tl.states]), np.array([s.pos_ned_m for s in ul.states])
    assert np.allclose(pa.min(axis=0), pb.min(axis=0), atol=0.3)
    assert np.allclose(pa.max(axis=0), pb.max(axis=0), atol=0.3)
    assert -10.3 < pa[:, 2].min() < -9.3
    for d in (tl, ul):
        t = np.array([s.t_s for s in d.states])
        assert np.all(np.diff(t) > 0)
        q = np.array([s.q_body_to_ned for s in d.states])
        assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)


def test_real_ardupilot_tlog_with_radio_corruption(logs):
    p = logs / "dronekit_python" / "flight.tlog"
    if not p.is_file():
        pytest.skip(f"{p} is absent")
    d = read_vehicle_log(p)
    assert d.autopilot is Autopilot.ARDUPILOT
    assert d.bad_frames > 1000 and any("corrupt" in n for n in d.notes)   # counted and said, not fatal
    assert len(d.states) > 1000 and d.t_last_s - d.t_first_s > 500


def test_truncated_and_garbage_logs(logs, tmp_path):
    src = (logs / "px4_sih" / "flightA.tlog").read_bytes()
    half = tmp_path / "half.tlog"
    half.write_bytes(src[: len(src) // 2 + 7])          # cut mid-frame, as a power cut would
    d = read_vehicle_log(half)
    full_span = 82.0
    assert 10 < d.t_last_s - d.t_first_s < full_span and len(d.states) > 100
    stub = tmp_path / "stub.tlog"
    stub.write_bytes(src[:1500])
    with pytest.raises(ReplayError, match="fewer than two vehicle states"):
        read_vehicle_log(stub)
    garbage = tmp_path / "garbage.ulg"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ReplayError, match="garbage.ulg"):
        read_vehicle_log(garbage)
    ulg = (logs / "px4_sih" / "flightA.ulg").read_bytes()
    cut = tmp_path / "cut.ulg"
    cut.write_bytes(ulg[: len(ulg) // 3])
    try:
        d = read_vehicle_log(cut)                      # what was written before the cut is replayable
        assert 0 < d.t_last_s - d.t_first_s < 80
    except ReplayError as exc:                          # or one clear line, never a crash deep in pyulog
        assert "cut.ulg" in str(exc)
    (tmp_path / "empty.tlog").write_bytes(b"")
    with pytest.raises(ReplayError, match="empty"):
        read_vehicle_log(tmp_path / "empty.tlog")
    with pytest.raises(ReplayError, match="not found"):
        read_vehicle_log(tmp_path / "nope.tlog")
    shutil.copy(half, tmp_path / "flight.bin2")
    with pytest.raises(ReplayError, match="unknown log format"):
        read_vehicle_log(tmp_path / "flight.bin2")


def test_cue_csv_errors_name_the_line(tmp_path):
    p = tmp_path / "cues.csv"
    p.write_text("t_s,n_m,e_m,d_m,vn_mps,ve_mps,vd_mps,pos_std_m\n1,2,3,4,5,6,7,8\n2,2,3,nan,5,6,7,8\n")
    with pytest.raises(ReplayError, match="cues.csv:3"):
        read_cues_csv(p, 100.0)
    p.write_text("t_s,n_m,e_m\n1,2,3\n")
    with pytest.raises(ReplayError, match="missing columns"):
        read_cues_csv(p, 100.0)
    p.write_text("t_s,n_m,e_m,d_m,vn_mps,ve_mps,vd_mps,pos_std_m\n2,1,0,-5,0,0,0,3\n1,0,0,-5,0,0,0,3\n")
    cues = read_cues_csv(p, 100.0)
    assert [c.t_s for c in cues] == [101.0, 102.0] and cues[0].pos_ned_m.tolist() == [0.0, 0.0, -5.0]


CUES = "t_s,n_m,e_m,d_m,vn_mps,ve_mps,vd_mps,pos_std_m\n" + "".join(
    f"{t},{400 - 20 * (t - 19)},0,-120,-20,0,0,10\n" for t in range(19, 26))


@pytest.mark.parametrize("authorize", ["log", "what-if"])
def test_replay_flight_with_video_and_cue(shared_data, tmp_path, capsys, authorize):
    """flightA (real PX4 SITL flight) with a real drone video as its camera and a ground cue: the pipeline
    detects and tracks the drone, the cue starts the engagement, and TERMINAL happens only when an operator
    authorizes (never from the log alone, which has no authorization)."""
    video = shared_data / "svanstrom_drone_detection_dataset" / "videos_visible" / "V_DRONE_023.mp4"
    (tmp_path / "cues.csv").write_text(CUES)
    out = tmp_path / "out"
    rc = replay_main([str(shared_data / "logs" / "px4_sih" / "flightA.ulg"), "--video", str(video),
                      "--video-start-s", "20", "--hfov-deg", "60", "--cues", str(tmp_path / "cues.csv"),
                      "--authorize", authorize, "--max-frames", "100", "--out", str(out),
                      *(["--no-video-out"] if authorize == "log" else [])])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert s["frames"] == 100 and s["frames_with_detections"] >= 90       # a close drone in every frame
    assert s["confirmed_tracks"] and s["confirmed_track_frames_by_class"].get("drone", 0) >= 80
    states = s["states_visited"]
    assert states[:3] == ["idle", "midcourse", "acquire"] and s["setpoints_that_would_have_been_sent"] >= 90
    if authorize == "log":
        assert "await_authorization" in states and "terminal" not in states
    else:
        assert "terminal" in states
        assert (out / "replay.mp4").stat().st_size > 10_000
    recs = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in recs} >= {"detections", "tracks", "decision", "setpoint"}
    assert (out / "timeline.png").is_file() and (out / "trajectory.png").is_file()


def test_replay_bad_input_is_one_line(shared_data, tmp_path, capsys):
    video = shared_data / "svanstrom_drone_detection_dataset" / "videos_visible" / "V_DRONE_023.mp4"
    log = shared_data / "logs" / "px4_sih" / "flightA.tlog"
    assert replay_main([str(log), "--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path)]) == 2
    assert "video file not found" in capsys.readouterr().err
    assert replay_main([str(log), "--video", str(video), "--video-start-s", "500", "--out", str(tmp_path)]) == 2
    assert "no video frame falls inside the log" in capsys.readouterr().err
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text("[link\nurl=")
    assert replay_main([str(log), "--video", str(video), "--config", str(bad_cfg), "--out", str(tmp_path)]) == 2
    assert "config" in capsys.readouterr().err


def test_recorded_flight_folder_replays_on_its_frame_times(shared_data, tmp_path, capsys):
    """A folder as the flight recorder writes it (tlog + camera.mp4 + frames.csv): replay takes every frame at
    its recorded capture time; a power cut mid-row in frames.csv loses only that row."""
    import cv2

    from autonomy.replay.record import CameraRecorder, read_frame_times

    rec_dir = tmp_path / "flight-1"
    rec_dir.mkdir()
    shutil.copy(shared_data / "logs" / "px4_sih" / "flightA.tlog", rec_dir / "flight.tlog")
    t0 = read_vehicle_log(rec_dir / "flight.tlog").t_first_s
    cap = cv2.VideoCapture(str(shared_data / "svanstrom_drone_detection_dataset" / "videos_visible" / "V_DRONE_023.mp4"))
    rec = CameraRecorder(rec_dir, 30.0, clock_offset_s=t0)
    t_rel = 20.0
    for _ in range(40):
        ok, img = cap.read()
        assert ok
        rec.write(img, t_rel)
        t_rel += 1 / 30 if rec.frames % 2 else 1 / 15         # uneven capture intervals, as a real camera has
    rec.write(np.zeros((10, 10, 3), np.uint8), t_rel)          # another size: not written
    rec.close()
    cap.release()
    assert rec.frames == 40 and rec.skipped == 1
    times = read_frame_times(rec_dir / "frames.csv")
    assert len(times) == 40 and np.all(np.diff(times) > 0) and times[0] == pytest.approx(t0 + 20.0)
    with (rec_dir / "frames.csv").open("a") as f:
        f.write("40,17")                                       # cut mid-row
    assert len(read_frame_times(rec_dir / "frames.csv")) == 40

    out = tmp_path / "out"
    assert replay_main([str(rec_dir), "--hfov-deg", "60", "--no-video-out", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert s["frames"] == 40 and s["frames_with_detections"] >= 36
    t_det = [r["t_capture_s"] for r in map(json.loads, (out / "decisions.jsonl").read_text().splitlines())
             if r["kind"] == "detections"]
    assert np.allclose(t_det, times, atol=1e-6)
    (rec_dir / "second.ulg").write_bytes(b"x")
    assert replay_main([str(rec_dir), "--out", str(out)]) == 2
    assert "exactly one .tlog or .ulg" in capsys.readouterr().err
