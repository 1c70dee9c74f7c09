"""Governance actions: what a person does to the loop, recorded with who did it and why.

Promote a registered version, roll back to the previous champion, acknowledge an alert. The one
service under both ``fraudops models promote|rollback`` / ``fraudops alerts ack`` and the
dashboard's actions. Every refusal is a ``GovernanceError`` (input 422, unknown target 404,
conflict 409 on the web) or a lake error (``SchemaOutdatedError``: run ``fraudops lake init``),
and nothing is changed when one is raised.
"""

from fraudops.governance.alerts import AlertAck, acknowledge_alert
from fraudops.governance.errors import (
    ActionConflict,
    ActionInputError,
    ActionTargetNotFound,
    GovernanceError,
)
from fraudops.governance.models import promote, rollback
from fraudops.lake.evolution import SchemaOutdatedError

__all__ = [
    "ActionConflict",
    "ActionInputError",
    "ActionTargetNotFound",
    "AlertAck",
    "GovernanceError",
    "SchemaOutdatedError",
    "acknowledge_alert",
    "promote",
    "rollback",
]
