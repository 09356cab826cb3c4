"""Time-indexed vehicle state history: interpolate pose at a camera frame's capture time.

Two series, each sampled when its message arrives: kinematics (pos_ned_m, vel_ned_mps; LOCAL_POSITION_NED,
~30 Hz on PX4) and attitude (q_body_to_ned, rate_body_radps; ATTITUDE_QUATERNION ~50 Hz). ``state_at(t_s)``
interpolates position/velocity linearly and attitude by slerp between the neighbouring samples, and
extrapolates (constant velocity / constant body rate) at most ``max_extrapolation_s`` past the newest one.
Times are on our clock (seconds). Memory is bounded (``capacity`` samples per series).
"""

from __future__ import annotations

import numpy as np

from autonomy.geometry import quat_integrate, quat_normalize, quat_slerp


class TimeSeries:
    """Append-only (t, row) ring with sorted, contiguous storage for ``searchsorted``."""

    def __init__(self, width: int, capacity: int = 2048) -> None:
        self._cap = capacity
        self._t = np.empty(2 * capacity)
        self._x = np.empty((2 * capacity, width))
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, t_s: float, row: np.ndarray) -> bool:
        """Add a sample; out-of-order or duplicate times are ignored (returns False)."""
        if self._n and t_s <= self._t[self._n - 1]:
            return False
        if self._n == 2 * self._cap:
            self._t[: self._cap] = self._t[self._cap :]
            self._x[: self._cap] = self._x[self._cap :]
            self._n = self._cap
        self._t[self._n] = t_s
        self._x[self._n] = row
        self._n += 1
        return True

    def append2(self, t_s: float, a: np.ndarray, b: np.ndarray) -> bool:
        """``append(t_s, concatenate([a, b]))`` without the temporary."""
        if self._n and t_s <= self._t[self._n - 1]:
            return False
        if self._n == 2 * self._cap:
            self._t[: self._cap] = self._t[self._cap :]
            self._x[: self._cap] = self._x[self._cap :]
            self._n = self._cap
        k = len(a)
        self._t[self._n] = t_s
        self._x[self._n, :k] = a
        self._x[self._n, k:] = b
        self._n += 1
        return True

    @property
    def t_first_s(self) -> float:
        return float(self._t[0]) if self._n else float("nan")

    @property
    def t_last_s(self) -> float:
        return float(self._t[self._n - 1]) if self._n else float("nan")

    def last(self) -> np.ndarray:
        return self._x[self._n - 1].copy()

    def times_after(self, t_s: float) -> np.ndarray:
        """Times of the held samples strictly after ``t_s``, oldest first (log replay walks the history)."""
        n = self._n
        return self._t[int(np.searchsorted(self._t[:n], t_s, side="right")):n].copy()

    def bracket(self, t_s: float) -> tuple[np.ndarray, np.ndarray, float, float] | None:
        """(row0, row1, frac, dt_past_last_s) around t_s; None before the first sample or when empty."""
        n = self._n
        if n == 0 or t_s < self._t[0]:
            return None
        if t_s >= self._t[n - 1]:
            row = self._x[n - 1]
            return row, row, 0.0, float(t_s - self._t[n - 1])
        i = int(np.searchsorted(self._t[:n], t_s, side="right"))
        t0, t1 = self._t[i - 1], self._t[i]
        return self._x[i - 1], self._x[i], float((t_s - t0) / (t1 - t0)), 0.0


class StateHistory:
    """Kinematics and attitude series; see the module docstring."""

    def __init__(self, capacity: int = 2048, max_extrapolation_s: float = 0.1) -> None:
        self.kin = TimeSeries(6, capacity)
        self.att = TimeSeries(7, capacity)
        self.max_extrapolation_s = max_extrapolation_s

    def add_kinematics(self, t_s: float, pos_ned_m: np.ndarray, vel_ned_mps: np.ndarray) -> bool:
        return self.kin.append2(t_s, pos_ned_m, vel_ned_mps)

    def add_attitude(self, t_s: float, q_body_to_ned: np.ndarray, rate_body_radps: np.ndarray) -> bool:
        return self.att.append2(t_s, q_body_to_ned, rate_body_radps)

    def kinematics_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        b = self.kin.bracket(t_s)
        if b is None or b[3] > self.max_extrapolation_s:
            return None
        r0, r1, f, dt = b
        row = (1.0 - f) * r0 + f * r1
        pos, vel = row[:3].copy(), row[3:].copy()
        return pos + vel * dt, vel

    def attitude_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        b = self.att.bracket(t_s)
        if b is None or b[3] > self.max_extrapolation_s:
            return None
        r0, r1, f, dt = b
        q = quat_slerp(r0[:4], r1[:4], f) if f > 0.0 else r0[:4].copy()
        rate = (1.0 - f) * r0[4:] + f * r1[4:]
        if dt > 0.0:
            q = quat_integrate(q, rate, dt)
        return quat_normalize(q), rate
