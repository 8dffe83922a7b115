"""Run many experts on one machine, one OS process each, with limits, restarts and alerts.

See ``metaexpert.supervisor.supervisor`` for the priority and locking rules.
"""

from metaexpert.supervisor.config import ExpertProcessConfig, SupervisorConfig
from metaexpert.supervisor.supervisor import (
    ExpertProcess,
    Supervisor,
    SupervisorReport,
    describe_exit,
    supervise,
)

__all__ = [
    "ExpertProcess",
    "ExpertProcessConfig",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorReport",
    "describe_exit",
    "supervise",
]
