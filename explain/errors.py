"""Errors that carry one sentence a user can act on."""

from __future__ import annotations


class ExplainError(Exception):
    """Base class: the message is a complete sentence meant for the user."""


class ModelLoadError(ExplainError):
    """A model spec could not be resolved or loaded."""


class InputError(ExplainError):
    """The text, target or settings of a request are not usable."""


class SchemaError(ExplainError):
    """A saved or uploaded analysis cannot be read."""
