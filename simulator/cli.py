"""The `pimsim` command. Each subcommand lives in the module that owns its job and registers itself here.

A subcommand module exposes `register(subparsers)`, which adds a parser whose `func(args) -> int` runs it.
Every user-facing error is a `PimsimError`, printed as one line on stderr (never a traceback), exit status 2.
A closed stdout (`pimsim run | head -1`) ends quietly with status 141 like other Unix tools; Ctrl-C prints
one line and exits 130; an output that cannot be written (full disk) is one line naming the file.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from simulator.errors import PimsimError, clip

# Modules that add subcommands, in the order they appear in `pimsim --help`, with their subcommands (so that a
# module whose optional dependency is missing still lists them and says what to install).
SUBCOMMAND_MODULES = {
    "simulator.system.cli_commands": ("run", "reproduce"),
    "simulator.dram.replay_cli": ("replay",),
    "simulator.trace.cli_commands": ("export-trace", "validate-trace"),
    "simulator.baselines.cli_commands": ("baseline",),
    "simulator.functional.cli_commands": ("functional",),
    "simulator.sweep.cli_commands": ("sweep", "plot"),
}
#: top-level package of an optional dependency -> the pimsim extra that installs it
EXTRA_OF = {"torch": "export", "transformers": "export", "safetensors": "export", "dask": "sweep",
            "distributed": "sweep", "tqdm": "sweep", "pyarrow": "sweep"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pimsim", description="Cycle-accurate PIM-GPT / GDDR6-AiM simulator")
    from simulator import __version__

    parser.add_argument("--version", action="version", version=f"pimsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, commands in SUBCOMMAND_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional module whose extra is not installed
            if exc.name and exc.name.split(".")[0] == "simulator":
                raise
            for command in commands:
                _unavailable(sub, command, exc.name or "?")
            continue
        module.register(sub)
    return parser


def _unavailable(sub, command: str, missing: str) -> None:
    top = missing.split(".")[0]
    hint = f"pip install 'pimsim[{EXTRA_OF[top]}]'" if top in EXTRA_OF else f"pip install {top}"
    p = sub.add_parser(command, help=f"(unavailable: needs {top}; {hint})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def refuse(args) -> int:
        raise PimsimError(f"{command}: needs the Python package {top!r}, which is not installed; {hint}")

    p.set_defaults(func=refuse)


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _interrupted(exc: BaseException) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _error(message: str) -> None:
    try:
        print(f"pimsim: error: {clip(message)}", file=sys.stderr)
    except (OSError, ValueError):  # stderr closed too: nothing more to say
        pass


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error (already printed on stderr)
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        if not getattr(args, "func", None):
            parser.print_usage(sys.stderr)
            _error("give a command (see `pimsim --help`)")
            return 2
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except PimsimError as err:
        _error(str(err))
        return 2
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly, as Unix tools do
        _quiet_stdout()
        return 141
    except KeyboardInterrupt:
        _error("interrupted (Ctrl-C); results already committed are kept")
        return 130
    except SystemError as exc:  # Ctrl-C inside compiled (numba) code surfaces as a SystemError around it
        if not _interrupted(exc):
            raise
        _error("interrupted (Ctrl-C); results already committed are kept")
        return 130
    except MemoryError:
        _error("out of memory; use a smaller model, context or sweep")
        return 2
    except OSError as exc:  # e.g. a full disk while writing an output
        if exc.errno == errno.EPIPE:
            _quiet_stdout()
            return 141
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
