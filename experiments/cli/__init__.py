"""archscale: the command line (count, space, train, sweep, status, costs, report, suggest, list).

User errors (ArchScaleError) print one line on stderr and exit with status 2.

Owns: the ``archscale`` command line, one module per command, each with ``add_parser(sub)`` and
``run(args)``. May import every room of experiments/ (sweep, train, data, results) and the layers
below; Ray only through experiments.sweep. Building the parser
imports no torch, Ray or pandas: each command imports what it needs when it runs, so
``archscale --help`` answers at once.
"""
from __future__ import annotations

import argparse
import sys

from scaling.errors import ArchScaleError
from scaling.version import __version__

from . import costs, count, list_, report, space, status, suggest, sweep, train

COMMANDS = (count, space, train, sweep, status, costs, report, suggest, list_)


def build_parser() -> argparse.ArgumentParser:
    """The ``archscale`` parser with one subcommand per module of ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog="archscale", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"archscale {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failed trials, 2 user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = space.normalise_argv(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ArchScaleError as e:
        print(f"archscale {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archscale: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
