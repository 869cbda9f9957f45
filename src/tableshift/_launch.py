"""The `tableshift` command's entry point, importing nothing before it turns the cycle collector off.

`cli.main` turns it off for the run (a short-lived run of many small acyclic records); importing
the command line and the engine, before `main` can, creates thousands of objects too (dataclasses,
enums, compiled patterns), during which the collector ran 40-odd times for nothing. A command
that lists files forks the process that lists and reads them (`tableshift.early`) first.
"""

import gc
import sys

gc.disable()

from tableshift import early  # noqa: E402

early.start(sys.argv)  # a command that lists files begins listing and reading them in a process of its own

from tableshift.cli import entry  # noqa: E402

__all__ = ["entry"]
