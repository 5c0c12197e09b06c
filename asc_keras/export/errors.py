"""The export's failures: each one line naming the cause, all under `ExportError`."""

from __future__ import annotations

from asc_keras.errors import AscError


class ExportError(AscError, RuntimeError):
    """An export that cannot be made or did not pass its checks; one line naming the cause."""


class OverwriteError(ExportError):
    """The export folder exists and `overwrite` was not given."""


class SizeRuleError(ExportError):
    """A model over its task's complexity rule (`asc_keras.models.rules.check_size_rule`)."""


class ParityError(ExportError):
    """An artifact whose outputs differ from the Keras model beyond the tolerance."""
