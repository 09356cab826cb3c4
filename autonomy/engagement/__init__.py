"""autonomy.engagement: the engagement state machine, operator authorization and safety gates.

See :mod:`autonomy.engagement.machine` (states, reasons, decision log) and :mod:`autonomy.engagement.gates`
(the outcome of each gate).
"""

from autonomy.engagement.config import (  # noqa: F401
    EngagementConfig,
    EngagementError,
    GeofenceConfig,
    Zone,
    engagement_config_from_dict,
    load_engagement_toml,
)
from autonomy.engagement.machine import (  # noqa: F401
    DecisionRecord,
    EngagementInput,
    EngagementMachine,
    EngagementOutput,
    Reason,
    State,
)
