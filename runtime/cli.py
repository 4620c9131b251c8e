"""The argument parser every ``python -m ...`` command of the project uses.

argparse answers a bad argument (``--epochs x``, a missing ``--out``) with its whole usage block
and then the message; for the 20-odd options of ``python -m train`` that is a screenful in which
the one line that matters comes last. The project's rule is one line on stderr and a non-zero
exit, the same ``error: ...`` the commands print for their own errors, with a pointer to
``--help``. Exit status 2 stays argparse's (and the commands' own) "usage error".
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Callable, NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line: ``error: MESSAGE (see PROG --help)``,
    and which takes ``-1e3`` and ``-inf`` as values (argparse reads them as unknown options)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # argparse's own pattern knows -60 and -0.5 only: `--silence-db -1e3` was "expected one argument".
        # No option of the project looks like a number, so every such token is a value.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$", re.I)

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse wraps some messages over lines
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def exit_with(main: Callable[[], int], prog: str) -> NoReturn:
    """``sys.exit(main())`` for a command's ``__main__`` block, with Ctrl-C as one line and exit 130
    (the shell's code for SIGINT) instead of a traceback through whatever library was running.
    Commands that can resume (``python -m train``) catch it themselves and say how."""
    try:
        code = main()
    except KeyboardInterrupt:
        sys.stderr.write(f"interrupted: {prog} stopped before it finished (Ctrl-C); run it again to redo it\n")
        code = 130
    sys.exit(code)


__all__ = ["ArgumentParser", "exit_with"]
