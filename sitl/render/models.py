"""Low-poly 3D target models for the synthetic camera, in real metres.

Every model is a triangle soup in the target's body frame FRD (x forward, y right, z down, origin at the
centre of mass), with one material index per triangle:

- ``MAT_MAIN``   the airframe colour (``RenderTarget.color_bgr`` or the kind's default),
- ``MAT_DARK``   motors, engines, canopy, cockpit windows (darker),
- ``MAT_ACCENT`` a secondary colour (battery, stripes, beak),
- ``MAT_DISC``   a spinning rotor or propeller disc, drawn translucent.

Sizes follow the real vehicles: a DJI-Phantom-class quad (~0.5 m with props), an X8 heavy lifter
(~1.3 m), a 5-inch FPV quad (~0.25 m), a Shahed-136-class delta wing (2.5 m span, 3.5 m long), a
small fixed-wing UAV (2.8 m span), a gull/crow-sized bird (1.0 m span, flapping), an A320-class
airliner (34 m span) and a light helicopter (11 m rotor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAT_MAIN, MAT_DARK, MAT_ACCENT, MAT_DISC = 0, 1, 2, 3

#: detector classes, index order of the YOLO labels.
CLASSES = ("drone", "bird", "airplane", "helicopter")

DRONE_KINDS = ("quad", "quad_x8", "fpv_quad", "shahed", "fixed_wing")
DISTRACTOR_KINDS = ("bird", "airliner", "helicopter")
KINDS = DRONE_KINDS + DISTRACTOR_KINDS

#: class name written into labels for each kind.
CLASS_OF_KIND = {
    "quad": "drone", "quad_x8": "drone", "fpv_quad": "drone", "shahed": "drone", "fixed_wing": "drone",
    "bird": "bird", "airliner": "airplane", "helicopter": "helicopter",
}

#: default main colour (BGR) per kind; the dataset generator draws others.
DEFAULT_BGR = {
    "quad": (235, 235, 235), "quad_x8": (30, 30, 30), "fpv_quad": (40, 40, 40), "shahed": (150, 150, 145),
    "fixed_wing": (225, 225, 225), "bird": (60, 60, 60), "airliner": (240, 240, 240),
    "helicopter": (60, 75, 60),
}

#: characteristic size (largest extent, metres) per kind at size_scale 1, for choosing ranges.
NOMINAL_SIZE_M = {
    "quad": 0.55, "quad_x8": 1.3, "fpv_quad": 0.27, "shahed": 3.5, "fixed_wing": 2.8,
    "bird": 1.0, "airliner": 37.0, "helicopter": 12.0,
}


@dataclass(frozen=True)
class Mesh:
    """Triangle soup: ``tris_body_m`` (T, 3, 3) FRD metres, ``material`` (T,) int8."""

    tris_body_m: np.ndarray
    material: np.ndarray


class _Builder:
    def __init__(self) -> None:
        self.tris: list[np.ndarray] = []
        self.mats: list[int] = []

    def tri(self, a, b, c, mat: int = MAT_MAIN) -> None:
        self.tris.append(np.array([a, b, c], dtype=np.float64))
        self.mats.append(mat)

    def fan(self, pts, mat: int = MAT_MAIN) -> None:
        """Convex planar polygon, vertices in order."""
        p = [np.asarray(x, dtype=np.float64) for x in pts]
        for i in range(1, len(p) - 1):
            self.tri(p[0], p[i], p[i + 1], mat)

    def beam(self, p0, p1, width_m: float, height_m: float, mat: int = MAT_MAIN, up=(0.0, 0.0, -1.0)) -> None:
        """Box of the given cross-section along the segment p0 -> p1."""
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        ax = p1 - p0
        ax /= np.linalg.norm(ax)
        up = np.asarray(up, float)
        if abs(np.dot(up, ax)) > 0.95:
            up = np.array([1.0, 0.0, 0.0]) if abs(ax[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        side = np.cross(ax, up)
        side /= np.linalg.norm(side)
        upv = np.cross(side, ax)
        hw, hh = side * width_m / 2, upv * height_m / 2
        c0 = [p0 - hw - hh, p0 + hw - hh, p0 + hw + hh, p0 - hw + hh]
        c1 = [p1 - hw - hh, p1 + hw - hh, p1 + hw + hh, p1 - hw + hh]
        for i in range(4):
            j = (i + 1) % 4
            self.fan([c0[i], c0[j], c1[j], c1[i]], mat)
        self.fan(c0, mat)
        self.fan(c1[::-1], mat)

    def box(self, center, size, mat: int = MAT_MAIN) -> None:
        c, s = np.asarray(center, float), np.asarray(size, float)
        self.beam(c - [s[0] / 2, 0, 0], c + [s[0] / 2, 0, 0], s[1], s[2], mat)

    def spindle(self, x0: float, x1: float, radii, n_sides: int = 8, mat: int = MAT_MAIN,
                center_yz=(0.0, 0.0), z_scale: float = 1.0) -> None:
        """Body of revolution along body x from x0 (nose) to x1 (tail) with the given radius profile."""
        radii = list(radii)
        xs = np.linspace(x0, x1, len(radii))
        ang = np.linspace(0, 2 * math.pi, n_sides, endpoint=False)
        cy, cz = center_yz
        rings = [np.stack([np.full(n_sides, x), cy + r * np.cos(ang), cz + z_scale * r * np.sin(ang)], axis=1)
                 for x, r in zip(xs, radii)]
        for a, b, ra, rb in zip(rings[:-1], rings[1:], radii[:-1], radii[1:]):
            for i in range(n_sides):
                j = (i + 1) % n_sides
                if ra > 0:
                    self.tri(a[i], a[j], b[j], mat)
                if rb > 0:
                    self.tri(a[i], b[j], b[i], mat)

    def disc(self, center, radius_m: float, normal=(0.0, 0.0, 1.0), n: int = 14, mat: int = MAT_DISC) -> None:
        c, nn = np.asarray(center, float), np.asarray(normal, float)
        nn /= np.linalg.norm(nn)
        e1 = np.cross(nn, [1.0, 0, 0] if abs(nn[0]) < 0.9 else [0, 1.0, 0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(nn, e1)
        ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
        self.fan([c + radius_m * (math.cos(a) * e1 + math.sin(a) * e2) for a in ang], mat)

    def mesh(self) -> Mesh:
        return Mesh(np.stack(self.tris), np.array(self.mats, dtype=np.int8))


def _multirotor(arm_m: float, body, n_arms: int, disc_r_m: float, coax: bool, legs_m: float,
                arm_w_m: float, battery=None, x_config: bool = True) -> Mesh:
    b = _Builder()
    b.box((0, 0, 0), body, MAT_MAIN)
    if battery is not None:
        b.box((0, 0, -body[2] / 2 - battery[2] / 2), battery, MAT_ACCENT)
    off = math.pi / n_arms if x_config else 0.0
    for k in range(n_arms):
        a = off + 2 * math.pi * k / n_arms
        tip = np.array([arm_m * math.cos(a), arm_m * math.sin(a), 0.0])
        b.beam((0, 0, 0), tip, arm_w_m, arm_w_m, MAT_MAIN)
        motor_h = 2.0 * arm_w_m
        b.box(tip + [0, 0, -motor_h / 2], (1.4 * arm_w_m, 1.4 * arm_w_m, motor_h), MAT_DARK)
        b.disc(tip + [0, 0, -motor_h], disc_r_m)
        if coax:
            b.box(tip + [0, 0, motor_h / 2], (1.4 * arm_w_m, 1.4 * arm_w_m, motor_h), MAT_DARK)
            b.disc(tip + [0, 0, motor_h], disc_r_m)
    if legs_m > 0:
        for s in (-1, 1):
            y = s * body[1] * 0.8
            b.beam((0, y, body[2] / 2), (0, y * 1.3, body[2] / 2 + legs_m), arm_w_m * 0.6, arm_w_m * 0.6, MAT_DARK)
            b.beam((-body[0] * 0.7, y * 1.3, body[2] / 2 + legs_m), (body[0] * 0.7, y * 1.3, body[2] / 2 + legs_m),
                   arm_w_m * 0.6, arm_w_m * 0.6, MAT_DARK)
    return b.mesh()


def _quad() -> Mesh:
    # DJI Phantom class: 350 mm diagonal, 9.4-inch props, white.
    m = _multirotor(0.175, (0.20, 0.12, 0.08), 4, 0.12, False, 0.10, 0.025)
    b = _Builder()
    b.box((0.09, 0, 0.07), (0.05, 0.05, 0.05), MAT_DARK)  # gimbal camera
    return _merge(m, b.mesh())


def _quad_x8() -> Mesh:
    return _multirotor(0.55, (0.35, 0.30, 0.12), 4, 0.28, True, 0.35, 0.04,
                       battery=(0.25, 0.15, 0.08))


def _fpv_quad() -> Mesh:
    return _multirotor(0.115, (0.12, 0.04, 0.03), 4, 0.064, False, 0.0, 0.018,
                       battery=(0.08, 0.035, 0.03))


def _shahed() -> Mesh:
    # Shahed-136: ~3.5 m long, ~2.5 m span cropped delta, winglets, pusher propeller.
    b = _Builder()
    b.spindle(1.75, -1.6, [0.0, 0.16, 0.22, 0.24, 0.24, 0.22, 0.15], n_sides=8)
    zw = 0.05
    b.fan([(0.9, 0.0, zw), (-1.45, 1.25, zw), (-1.75, 1.25, zw), (-1.6, 0.0, zw)])
    b.fan([(0.9, 0.0, zw), (-1.6, 0.0, zw), (-1.75, -1.25, zw), (-1.45, -1.25, zw)])
    for s in (-1, 1):
        b.fan([(-1.35, s * 1.25, zw), (-1.75, s * 1.25, zw - 0.45), (-1.8, s * 1.25, zw), ], MAT_MAIN)
        b.fan([(-1.35, s * 1.25, zw), (-1.8, s * 1.25, zw), (-1.75, s * 1.25, zw + 0.25)], MAT_MAIN)
    b.spindle(1.75, 1.55, [0.0, 0.12], n_sides=6, mat=MAT_DARK)  # warhead nose cap
    b.disc((-1.68, 0, 0), 0.4, normal=(1.0, 0, 0))
    return b.mesh()


def _fixed_wing() -> Mesh:
    # Small UAV: 2.8 m span, 1.8 m long, high wing, conventional tail, tractor propeller.
    b = _Builder()
    b.spindle(0.8, -1.0, [0.06, 0.12, 0.12, 0.09, 0.05, 0.02], n_sides=8)
    zw = -0.1
    b.fan([(0.25, 0, zw), (0.22, 1.4, zw), (0.0, 1.4, zw), (-0.05, 0, zw)])
    b.fan([(0.25, 0, zw), (-0.05, 0, zw), (0.0, -1.4, zw), (0.22, -1.4, zw)])
    b.fan([(-0.78, 0, 0), (-0.8, 0.45, 0), (-0.98, 0.45, 0), (-1.0, 0, 0)])
    b.fan([(-0.78, 0, 0), (-1.0, 0, 0), (-0.98, -0.45, 0), (-0.8, -0.45, 0)])
    b.fan([(-0.75, 0, 0), (-0.95, 0, -0.35), (-1.05, 0, -0.35), (-1.0, 0, 0)])
    b.box((0.45, 0, 0.07), (0.1, 0.08, 0.06), MAT_DARK)  # payload
    b.disc((0.82, 0, 0), 0.22, normal=(1.0, 0, 0))
    return b.mesh()


def _bird(flap_rad: float) -> Mesh:
    # Gull/crow: 1.0 m span, 0.4 m long body; wings in two panels, dihedral ``flap_rad``.
    b = _Builder()
    b.spindle(0.22, -0.18, [0.0, 0.045, 0.055, 0.04, 0.02], n_sides=6)
    b.spindle(0.30, 0.2, [0.0, 0.025], n_sides=5)  # head
    b.fan([(-0.15, 0.0, 0.0), (-0.3, 0.08, 0.0), (-0.3, -0.08, 0.0)])  # tail
    c, s = math.cos(flap_rad), math.sin(flap_rad)
    c2, s2 = math.cos(1.6 * flap_rad), math.sin(1.6 * flap_rad)
    for sg in (-1, 1):
        r0 = np.array([0.05, sg * 0.03, 0.0])
        r1 = np.array([-0.08, sg * 0.03, 0.0])
        e0 = r0 + np.array([0.0, sg * 0.22 * c, -0.22 * s])
        e1 = r1 + np.array([-0.02, sg * 0.22 * c, -0.22 * s])
        t0 = e0 + np.array([-0.08, sg * 0.25 * c2, -0.25 * s2])
        b.fan([r0, e0, e1, r1])
        b.fan([e0, t0, e1])
    return b.mesh()


def _airliner() -> Mesh:
    # A320 class: 37.6 m long, 34 m span, 12.5 m tail height.
    b = _Builder()
    b.spindle(18.5, -19.0, [0.0, 1.6, 2.0, 2.0, 2.0, 2.0, 1.7, 1.0, 0.3], n_sides=10)
    zw = 1.0
    b.fan([(4.0, 1.5, zw), (-5.0, 17.0, zw - 1.0), (-7.0, 17.0, zw - 1.0), (-4.0, 1.5, zw)])
    b.fan([(4.0, -1.5, zw), (-4.0, -1.5, zw), (-7.0, -17.0, zw - 1.0), (-5.0, -17.0, zw - 1.0)])
    b.fan([(-13.0, 0.5, -0.5), (-17.5, 6.3, -0.8), (-19.0, 6.3, -0.8), (-18.0, 0.5, -0.5)])
    b.fan([(-13.0, -0.5, -0.5), (-18.0, -0.5, -0.5), (-19.0, -6.3, -0.8), (-17.5, -6.3, -0.8)])
    b.fan([(-12.0, 0, -1.5), (-17.5, 0, -8.0), (-19.5, 0, -8.0), (-18.5, 0, -1.5)])
    for s in (-1, 1):
        b.spindle(4.0, 0.0, [0.9, 1.0, 0.9, 0.6], n_sides=8, mat=MAT_DARK, center_yz=(s * 5.7, 2.2))
    return b.mesh()


def _helicopter(rotor_angle_rad: float) -> Mesh:
    # Light utility helicopter: 10 m rotor diameter, 12 m overall.
    b = _Builder()
    b.spindle(2.2, -2.2, [0.4, 1.0, 1.15, 1.1, 0.7, 0.45], n_sides=10, z_scale=1.1)
    b.spindle(1.9, 0.9, [0.5, 0.85, 0.9], n_sides=8, mat=MAT_DARK, center_yz=(0.0, -0.2))  # canopy
    b.beam((-1.8, 0, -0.3), (-7.0, 0, -0.6), 0.35, 0.4)
    b.fan([(-6.2, 0, -0.5), (-7.3, 0, -1.9), (-7.5, 0, -1.8), (-7.0, 0, -0.4)])
    b.fan([(-6.0, 0.0, -0.5), (-6.3, 1.0, -0.5), (-6.7, 1.0, -0.5), (-6.6, 0.0, -0.5)])
    b.fan([(-6.0, 0.0, -0.5), (-6.6, 0.0, -0.5), (-6.7, -1.0, -0.5), (-6.3, -1.0, -0.5)])
    b.box((0.0, 0, -1.45), (1.2, 0.7, 0.5), MAT_MAIN)  # engine cowling
    b.disc((0.0, 0, -1.8), 5.2, n=18)
    for k in range(2):
        a = rotor_angle_rad + k * math.pi
        b.beam((0.0, 0, -1.8), (5.2 * math.cos(a), 5.2 * math.sin(a), -1.8), 0.3, 0.06, MAT_DARK)
    b.disc((-7.0, 0.3, -1.3), 0.8, normal=(0.0, 1.0, 0.0))
    for s in (-1, 1):
        b.beam((1.6, s * 0.9, 1.35), (-1.6, s * 0.9, 1.35), 0.08, 0.08, MAT_DARK)
        b.beam((0.8, s * 0.5, 0.9), (0.8, s * 0.9, 1.35), 0.07, 0.07, MAT_DARK)
        b.beam((-0.8, s * 0.5, 0.9), (-0.8, s * 0.9, 1.35), 0.07, 0.07, MAT_DARK)
    return b.mesh()


def _merge(a: Mesh, b: Mesh) -> Mesh:
    return Mesh(np.concatenate([a.tris_body_m, b.tris_body_m]), np.concatenate([a.material, b.material]))


_STATIC = {"quad": _quad, "quad_x8": _quad_x8, "fpv_quad": _fpv_quad, "shahed": _shahed,
           "fixed_wing": _fixed_wing, "airliner": _airliner}


class MeshLibrary:
    """Builds and caches the static meshes of one renderer (no module-level mutable state)."""

    def __init__(self) -> None:
        self._cache: dict[str, Mesh] = {}

    def mesh(self, kind: str, t_s: float = 0.0, phase_rad: float = 0.0) -> Mesh:
        """Mesh of ``kind`` at time ``t_s`` (birds flap at 3.5 Hz, the helicopter's two-blade rotor turns
        at 6.5 Hz). Animation phases are quantised to 1/64 of a cycle so that meshes can be cached."""
        if kind in _STATIC:
            key: tuple = (kind,)
            build = _STATIC[kind]
        elif kind == "bird":
            k = round(64 * ((3.5 * t_s + phase_rad / (2 * math.pi)) % 1.0)) % 64
            key, build = (kind, k), lambda: _bird(math.radians(35.0) * math.sin(2 * math.pi * k / 64))
        elif kind == "helicopter":
            k = round(64 * ((6.5 * t_s + phase_rad / (2 * math.pi)) % 1.0)) % 64
            key, build = (kind, k), lambda: _helicopter(2 * math.pi * k / 64)
        else:
            raise ValueError(f"unknown target kind {kind!r}; expected one of {KINDS}")
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]
