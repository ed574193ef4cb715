"""The library's loggers, silent until the application configures logging.

A library must not print on its own: the ``atls`` logger gets a
``NullHandler`` when nothing else handles it (see the README on logging).
"""

from __future__ import annotations

import logging

__all__ = ["library_logger"]


def library_logger(name: str) -> logging.Logger:
    """The logger ``name`` (under ``atls``), its parent made silent unless configured."""
    parent = logging.getLogger("atls")
    if not parent.handlers:
        parent.addHandler(logging.NullHandler())
    return logging.getLogger(name)
