"""The ``editbench`` command line: one module per command group, assembled here.

Exit codes: 0 success; 1 a check failed (score gate, method checks) or a bug inside editbench (its
traceback is shown); 2 bad input (unknown name or option, malformed config, unreadable or unsafe file,
a submitted method that fails), reported as one line ``editbench: error: ...`` on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from editbench.core import UserError

from . import check, ci, edit, experiment, leaderboard, lmeval, methods, models, run, submit, train, world
from .common import Parser, check_outputs

EXIT_USAGE = 2
GROUPS = (world, models, train, methods, edit, run, leaderboard, check, submit, ci, lmeval, experiment)


def build_parser() -> Parser:
    from editbench import __version__

    parser = Parser(prog="editbench", description="editbench: when does editing a model beat finetuning or prompting it?")
    parser.add_argument("--version", action="version", version=f"editbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        check_outputs(args)
        return args.func(args)
    except UserError as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"editbench: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("editbench: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    import signal

    if hasattr(signal, "SIGPIPE"):  # `editbench ... | head` ends quietly, as other command-line tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
