"""Rendering: terminal tables (``tables``), PNG charts of serving runs (``plots``) and the TCO
report (``tco``, HTML or Markdown). Computed results in, text and figures out; matplotlib is
imported only when a figure is drawn."""

from explore.report.tables import (
    make_console,
    print_predict,
    print_presets,
    print_serving,
    print_show,
)

__all__ = ["make_console", "print_predict", "print_presets", "print_serving", "print_show"]
