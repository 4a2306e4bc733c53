"""Every ORM class, one module per aggregate."""

from deletion_audit.models.base import Base
from deletion_audit.models.log import (
    Event,
    LogCheckpoint,
    LogIdentity,
    LogLeaf,
    LogNode,
    LogState,
)

__all__ = ["Base", "Event", "LogCheckpoint", "LogIdentity", "LogLeaf", "LogNode", "LogState"]
