"""The command line's argument parsing: one-line usage errors with a "did you mean", shared options.

Kept out of ``cli.py`` (which re-exports these names) so each stays small; imported by
``autotrack --help``, so nothing heavy here either (``difflib`` and ``re`` only on an error).
"""

from __future__ import annotations

import argparse
from typing import Callable, NoReturn

__all__ = ["UsageError", "whole_number", "output_options"]


class UsageError(Exception):
    """A bad command line; reported as one line with exit status 2 (argparse would print usage)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}{self._did_you_mean(message)} (see '{self.prog} --help')")

    def _did_you_mean(self, message: str) -> str:
        """``; did you mean 'show'?`` for a mistyped command, choice or option, else ``""``."""
        import difflib
        import re

        found = re.search(r"invalid choice: '([^']*)'", message)
        if found:
            typed = found.group(1)
            known = [str(c) for action in self._actions if action.choices for c in action.choices]
        elif message.startswith("unrecognized arguments: "):
            typed = next((a for a in message.split(": ", 1)[1].split() if a.startswith("--")), "")
            known = sorted(_option_strings(self))
        else:
            return ""
        close = difflib.get_close_matches(typed, known, n=1, cutoff=0.6) if typed else []
        return f"; did you mean {close[0]!r}?" if close else ""


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option of ``parser`` and of its sub-commands (whichever one was typed)."""
    found = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                found |= _option_strings(sub)
    return found


def whole_number(minimum: int, meaning: str = "") -> Callable[[str], int]:
    """An argparse type: an int of at least ``minimum`` (``meaning`` explains the minimum)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum}{meaning} or more, not {number}")
        return number

    return parse


def _global_options(parser: argparse.ArgumentParser, sub: bool, uri_help: str | None = None) -> None:
    """``--uri`` and ``--json`` both before and after the command (``uri_help``: for a command
    whose ``--uri`` means something else, ``sync``).

    The sub-command copies default to SUPPRESS, so they only override the top-level values when
    given; otherwise ``autotrack --json runs`` would be reset to False by the sub-parser.
    """
    parser.add_argument("--uri", default=argparse.SUPPRESS if sub else None,
                        help=uri_help or "the run store (default: AUTOTRACK_URI, autotrack.toml/pyproject.toml, "
                                         "./autotrack-runs)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if sub else False,
                        help='machine-readable output: strict JSON, NaN/infinities as "NaN", "Infinity", "-Infinity"')


def output_options(p: argparse.ArgumentParser) -> None:
    """``-o PATH`` and ``--force``, as ``get`` and ``model get`` both write one file."""
    p.add_argument("-o", "--output", metavar="PATH", default=".",
                   help="file to write, or a directory to put it in (an existing one, or ending in '/'; "
                        "default: the current directory)")
    p.add_argument("-f", "--force", action="store_true", help="replace the file if it exists (default: refuse)")
