"""Front doors, in rooms by concern: ``api`` (predict, serve, step traces in Python), ``cli``
(the ``xpusim`` command, a module per command), ``search`` (spaces, objectives, Optuna, sweeps),
``tco`` (ownership and fleets), ``validation`` (cases, validate, calibrate, the shipped
measurements) and ``report`` (tables, plots, HTML).

``explore.predict(...)`` mirrors ``xpusim predict`` and returns a :class:`Result`
(``.to_dict()`` gives the ``--json`` object).
"""

from explore.api.predict import Result, predict

__all__ = ["Result", "predict"]
