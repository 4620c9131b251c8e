"""The argument parser every ``python -m ...`` command of the project uses.

argparse answers a bad argument (``--epochs x``, a missing ``--out``) with its whole usage block
and then the message; for the 20-odd options of ``python -m train`` that is a screenful in which
the one line that matters comes last. The project's rule is one line on stderr and a non-zero
exit, the same ``error: ...`` the commands print for their own errors, with a pointer to
``--help``. Exit status 2 stays argparse's (and the commands' own) "usage error".
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line: ``error: MESSAGE (see PROG --help)``."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse wraps some messages over lines
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


__all__ = ["ArgumentParser"]
