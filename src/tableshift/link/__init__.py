"""The project-wide link pass: names resolved across files, after the per-file scan."""
