"""The `pimsim` command. Each subcommand lives in the module that owns its job and registers itself here.

A subcommand module exposes `register(subparsers)`, which adds a parser whose `func(args) -> int` runs it.
Every user-facing error is a `PimsimError`, printed as one line (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from simulator.errors import PimsimError

# Modules that add subcommands, in the order they appear in `pimsim --help`.
SUBCOMMAND_MODULES = [
    "simulator.system.cli_commands",  # run, reproduce
    "simulator.dram.replay_cli",      # replay
    "simulator.trace.cli_commands",
    "simulator.baselines.cli_commands",
    "simulator.functional.cli_commands",
    "simulator.sweep.cli_commands",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pimsim", description="Cycle-accurate PIM-GPT / GDDR6-AiM simulator")
    from simulator import __version__

    parser.add_argument("--version", action="version", version=f"pimsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional module whose extra is not installed
            if exc.name and exc.name.split(".")[0] == "simulator":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PimsimError as err:
        print(f"pimsim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pimsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
