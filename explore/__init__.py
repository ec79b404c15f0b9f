"""Front doors: predict, validate, calibrate, reports and the CLI.

``explore.predict(...)`` mirrors ``xpusim predict`` and returns a :class:`Result` (``.to_dict()``
gives the ``--json`` object).
"""

from explore.predict import Result, predict

__all__ = ["Result", "predict"]
