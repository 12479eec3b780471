"""One-line errors for the operator's commands (`swordfish ...`): a refusal is printed as
``error: ...`` on stderr with an exit code, never as a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class CommandError(Exception):
    """A refusal the operator can act on: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


Refusal = Callable[[Exception], "tuple[int, str] | None"]


def one_line_errors(func: Callable[..., int], refusals: Refusal = lambda exc: None):
    """``func`` with CommandError, and each exception ``refusals`` names (exit code, one line), printed as
    ``error: ...``; anything else is a bug and keeps its traceback."""

    @functools.wraps(func)
    def run(*args, **kwargs) -> int:
        try:
            return func(*args, **kwargs)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code
        except Exception as exc:
            refused = refusals(exc)
            if refused is None:
                raise
            code, line = refused
            print(f"error: {line}", file=sys.stderr)
            return code

    return run
