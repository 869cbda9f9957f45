"""Allow `python -m tableshift`."""

from tableshift.cli import main

main()
