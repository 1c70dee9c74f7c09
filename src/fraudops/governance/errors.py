"""What a governance action refuses, by kind: the web layer maps each kind to one HTTP status
(bad input 422, unknown target 404, state conflict 409), the CLI prints the message."""

from __future__ import annotations

from fraudops.errors import FraudopsError

# Long enough for a sentence or two of why; a cap, so one request cannot fill the lake.
MAX_ACTOR = 200
MAX_TEXT = 2000


class GovernanceError(FraudopsError):
    """A governance action was refused; nothing was changed or recorded."""


class ActionInputError(GovernanceError):
    """A field of the action is empty or too long (the message names it)."""

    exit_code = 2


class ActionTargetNotFound(GovernanceError):
    """The version or alert the action names does not exist (the message names it)."""


class ActionConflict(GovernanceError):
    """The action makes no sense in the current state: promoting the champion, rolling back
    with no earlier champion, acknowledging an acknowledged alert."""


def required_text(field: str, value: str | None, limit: int = MAX_TEXT) -> str:
    """``value`` stripped; ActionInputError naming ``field`` when empty or over ``limit``."""
    text = (value or "").strip()
    if not text:
        raise ActionInputError(f"{field} is required and was empty")
    if len(text) > limit:
        raise ActionInputError(f"{field} is {len(text)} characters long; at most {limit}")
    return text
