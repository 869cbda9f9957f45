"""Allow `python -m tableshift`."""

from tableshift._launch import entry

entry()
