"""archscale: the command line (count, space, train, sweep, report).

User errors (ArchScaleError) print one line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

from scaling.errors import ArchScaleError

from . import cli_count, cli_space, cli_sweep, cli_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archscale", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (cli_count, cli_space, cli_train):
        module.add_parser(sub)
    cli_sweep.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = cli_space.normalise_argv(argv)
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


if __name__ == "__main__":
    sys.exit(main())
