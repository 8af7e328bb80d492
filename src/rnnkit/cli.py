"""The `rnnkit` command: the only module that reads argv.

Each subcommand's module is imported only when that subcommand runs, so a command that needs no
torch (e.g. `rnnkit sample --engine numpy`) never imports it.
"""
from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """A bad input from the user: printed as one line on stderr, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks from their textbook equations.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gradcheck = commands.add_parser(
        "gradcheck",
        help="check the NumPy engine's hand-written BPTT against finite differences and torch autograd",
        description="Check the NumPy engine's hand-written backpropagation through time for every "
        "cell and variant against central finite differences and against torch autograd. "
        "Prints a table and exits non-zero if any check fails.",
    )
    gradcheck.add_argument("--seed", type=int, default=0, help="random seed for sizes and data (default 0)")
    gradcheck.add_argument("--tolerance", type=float, default=1e-6,
                           help="largest relative error that passes (default 1e-6)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "gradcheck":
            from rnnkit.gradcheck import run

            return run(seed=args.seed, tolerance=args.tolerance)
        raise AssertionError(f"unhandled command {args.command}")
    except UsageError as error:
        print(f"rnnkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnnkit {args.command}: interrupted", file=sys.stderr)
        return 130
