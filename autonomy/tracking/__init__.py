"""autonomy.tracking: multi-target tracking in inertial line-of-sight space (numba kernels).

Public API: :class:`Tracker`, :class:`TrackerConfig`, :class:`SelectionPolicy`, :class:`TrackList`,
:class:`TrackingError`. Kernels live in ``_kernels.py`` (numba) with NumPy twins in ``_reference.py``.
"""

from autonomy.tracking.tracker import SelectionPolicy, Tracker, TrackerConfig, TrackingError, TrackList

__all__ = ["SelectionPolicy", "TrackList", "Tracker", "TrackerConfig", "TrackingError"]
