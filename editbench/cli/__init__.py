"""The ``editbench`` command line (see :mod:`.main`)."""

from .main import EXIT_USAGE, build_parser, entry, main

__all__ = ["EXIT_USAGE", "build_parser", "entry", "main"]
