"""The CI workflow and the pre-commit configuration `init --ci github` / `--pre-commit` write:
the gate run where the team runs it, pinned to the tableshift they installed."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    """Where this tableshift came from: a git repository and a commit, when pip recorded them."""

    url: str | None
    commit: str | None

    @property
    def known(self) -> bool:
        return self.url is not None and self.commit is not None

    def pin(self) -> tuple[str, str, list[str]]:
        """The repository and commit a written file installs tableshift from, and the comment
        asking to fill them in when they are not known."""
        edit = [] if self.known else ["# EDIT: the repository and commit tableshift is installed from (this copy was not installed from git)."]
        return self.url or _PLACEHOLDER_URL, self.commit or _PLACEHOLDER_REF, edit


def installed_from() -> Source:
    """The repository and commit pip installed this copy from (`pip install "tableshift @
    git+URL@REF"` records them, PEP 610); unknown for a local or editable install."""
    from importlib import metadata

    try:
        raw = metadata.distribution("tableshift").read_text("direct_url.json")
        data = json.loads(raw) if raw else {}
    except (metadata.PackageNotFoundError, ValueError):
        data = {}
    vcs = data.get("vcs_info") if isinstance(data, dict) else None
    if not isinstance(vcs, dict) or vcs.get("vcs") != "git" or not isinstance(data.get("url"), str):
        return Source(None, None)
    url = data["url"].removeprefix("git+")
    return Source(url, vcs.get("commit_id") if isinstance(vcs.get("commit_id"), str) else None)


_PLACEHOLDER_URL = "https://github.com/<owner>/tableshift"
_PLACEHOLDER_REF = "<a commit of tableshift's main>"


def github_workflow(source: Source) -> str:
    url, ref, edit = source.pin()
    return "\n".join(
        [
            "# tableshift: fail a pull request that adds legacy-table usage beyond the committed baseline.",
            "# Findings show inline on the pull request (--format github).",
            *edit,
            "name: legacy tables",
            "on: [pull_request]",
            "jobs:",
            "  legacy-tables:",
            "    runs-on: ubuntu-latest",
            "    steps:",
            "      - uses: actions/checkout@v4",
            "        with: { fetch-depth: 0 }",
            "      - uses: actions/setup-python@v5",
            '        with: { python-version: "3.12" }',
            f'      - run: pip install "tableshift @ git+{url}@{ref}"',
            "      - run: tableshift check --format github --changed-since origin/${{ github.base_ref || 'main' }}",
            "",
        ]
    )


def pre_commit(source: Source) -> str:
    url, ref, edit = source.pin()
    return "\n".join(
        [
            "# tableshift: block commits that add legacy-table usage beyond the committed baseline.",
            *edit,
            "repos:",
            f"  - repo: {url}",
            f"    rev: {ref}   # a full commit id: pre-commit takes one as it takes a tag",
            "    hooks: [{ id: tableshift-check }]",
            "",
        ]
    )
