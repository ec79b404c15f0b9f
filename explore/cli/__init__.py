"""The ``xpusim`` command line: :func:`main` parses and dispatches; a module per command
(``predict``, ``serve``, ``search`` + ``sweep``, ``tco``, ``validate`` + ``calibrate`` +
``physical``, ``presets`` + ``show``). ``python -m explore.cli ...`` runs it too."""

from explore.cli.main import main

__all__ = ["main"]
