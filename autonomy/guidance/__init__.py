"""autonomy.guidance: pure guidance laws (arrays in, arrays out, no I/O).

- :mod:`autonomy.guidance.laws`: predicted intercept point, true/pure/augmented PN, pure pursuit, time-to-go,
  field-of-view keeping, saturation, the altitude floor.
- :mod:`autonomy.guidance.setpoint`: acceleration command -> PX4 / ArduPilot set-point.
"""

from autonomy.guidance.laws import (  # noqa: F401
    GuidanceError,
    altitude_floor,
    augmented_pn,
    closing_speed,
    fov_keep,
    fov_speed_band,
    heading_to,
    predicted_intercept_point,
    pure_pn,
    pure_pursuit,
    range_from_angular_size,
    saturate,
    solve_intercept,
    time_to_go,
    true_pn,
    velocity_to_point,
)
from autonomy.guidance.setpoint import brake_setpoint, to_setpoint  # noqa: F401
