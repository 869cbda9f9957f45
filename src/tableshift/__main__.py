"""Allow `python -m tableshift`."""

from tableshift.cli import entry

entry()
