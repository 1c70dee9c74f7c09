"""Errors a user can act on. The CLI prints their message and exits with their exit code."""

from __future__ import annotations


class FraudopsError(Exception):
    """Base class: a problem with the user's input, config or environment, not a bug."""

    exit_code = 1


class ConfigError(FraudopsError):
    exit_code = 2


class ValidationError(FraudopsError):
    """Input data broke the feature spec; nothing was written."""

    exit_code = 2


class LakeError(FraudopsError):
    exit_code = 1


class GateFailed(FraudopsError):
    """The challenger missed a configured threshold: not registered."""

    exit_code = 3


class NotPromoted(FraudopsError):
    """The challenger passed the thresholds but trails the champion: registered, not promoted."""

    exit_code = 4
