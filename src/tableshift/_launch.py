"""The `tableshift` command's entry point, importing nothing before it turns the cycle collector off.

`cli.main` turns it off for the run (a short-lived run of many small acyclic records); importing
the command line and the engine, before `main` can, creates thousands of objects too (dataclasses,
enums, compiled patterns), during which the collector ran 40-odd times for nothing. A command
that lists files forks the process that lists and reads them (`tableshift.early`) first.
"""

import gc
import os
import sys

gc.disable()

try:
    from tableshift import early

    early.start(sys.argv)  # a command that lists files begins listing and reading them in a process of its own

    from tableshift.cli import entry
except KeyboardInterrupt:  # Ctrl-C before the command line can take it: said as `main` says it
    sys.stderr.write("tableshift: interrupted\n")
    os._exit(130)

__all__ = ["entry"]
