"""Command line: parse arguments, run the pipeline, pick a reporter, set the exit status."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from tableshift import __version__
from tableshift.errors import UsageError

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERNAL = 3
PROGRESS_MIN_FILES = 200
PIPED_WIDTH = 160

app = typer.Typer(
    name="tableshift",
    help="Audit, patch and gate Supabase / PostgREST table usage during a table consolidation.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class AuditFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tableshift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """tableshift: audit, patch and gate legacy-table usage in Supabase code."""


PathsArg = Annotated[
    Optional[list[Path]], typer.Argument(help="Files or directories to scan (default: the current directory).", show_default=False)
]
RulesOpt = Annotated[Optional[Path], typer.Option("--rules", "-r", help="Rules file (TOML) mapping legacy tables to targets.")]
IncludeOpt = Annotated[
    Optional[list[str]], typer.Option("--include", help="Only scan files matching this gitignore-style glob (repeatable).")
]
ExcludeOpt = Annotated[Optional[list[str]], typer.Option("--exclude", help="Skip files matching this gitignore-style glob (repeatable).")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")]


@app.command()
def audit(
    paths: PathsArg = None,
    rules: RulesOpt = None,
    format: Annotated[AuditFormat, typer.Option("--format", "-f", help="Report format.")] = AuditFormat.table,
    output: OutputOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
) -> None:
    """Find and classify every Supabase query call; report usage and migration readiness."""
    from tableshift import engine
    from tableshift.discover import discover
    from tableshift.report import audit as audit_report
    from tableshift.report import render
    from tableshift.report.sections import audit_sections
    from tableshift.rules import load_rules

    ruleset = load_rules(rules) if rules is not None else None
    sources = discover(paths or [Path(".")], include=include or (), exclude=exclude or ())
    result = _run_with_progress(engine, sources, ruleset)
    report = audit_report.build(result, ruleset)
    title = "tableshift audit" + (f" — rules: {ruleset.name}" if ruleset else "")
    if format is AuditFormat.json:
        _emit(render.to_json(report), output)
    elif format is AuditFormat.markdown:
        _emit(render.to_markdown(audit_sections(report), title=title), output)
    elif output is not None:
        _emit(render.tables_to_text(audit_sections(report), title=title), output)
    else:
        render.print_tables(audit_sections(report), _stdout_console(), title=title)


class Only(StrEnum):
    reads = "reads"
    writes = "writes"


@app.command()
def patch(
    paths: PathsArg = None,
    rules: Annotated[Path, typer.Option("--rules", "-r", help="Rules file (TOML) mapping legacy tables to targets.")] = ...,  # type: ignore[assignment]
    only: Annotated[Optional[Only], typer.Option("--only", help="Rewrite only reads (select) or only writes.")] = None,
    table: Annotated[Optional[list[str]], typer.Option("--table", help="Only calls on this legacy table (repeatable).")] = None,
    group: Annotated[Optional[list[str]], typer.Option("--group", help="Only calls on this rules group (repeatable).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the patch to this file.")] = None,
    split_dir: Annotated[Optional[Path], typer.Option("--split-dir", help="Write one patch per rules group into this directory.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Edit the files in place (atomically) instead of printing a patch.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the full coverage report (.md or .json).")] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
) -> None:
    """Rewrite legacy-table calls to the consolidated tables; print a unified diff and a coverage summary."""
    from tableshift import patching

    if sum(x is not None and x is not False for x in (output, split_dir, apply or None)) > 1:
        raise UsageError("--output, --split-dir and --apply exclude each other: pick one")
    if report is not None and report.suffix.lower() not in (".md", ".json"):
        raise UsageError(f"{report}: --report takes a .md or .json file")
    from tableshift.discover import discover
    from tableshift.rules import load_rules

    ruleset = load_rules(rules)
    selection = patching.selection(ruleset, only=only.value if only else None, tables=table or (), groups=group or ())
    sources = discover(paths or [Path(".")], include=include or (), exclude=exclude or ())
    from tableshift import engine

    result = _run_with_progress(engine, sources, ruleset)
    outcome = patching.run(result, ruleset, selection, split=split_dir is not None)
    status = patching.emit(outcome, output=output, split_dir=split_dir, apply=apply, err=Console(stderr=True))
    patching.write_report(outcome, report)
    raise typer.Exit(status)


def _stdout_console() -> Console:
    """Rich on a terminal; wide plain text when piped, so names are never folded."""
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def _run_with_progress(engine, sources, ruleset):  # type: ignore[no-untyped-def]
    err = Console(stderr=True)
    if not err.is_terminal or len(sources) < PROGRESS_MIN_FILES:
        return engine.run(sources, ruleset)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("scan", total=len(sources))
        return engine.run(sources, ruleset, on_file=lambda _: progress.advance(task))


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from tableshift.fsutil import write_atomic

    write_atomic(output, text.encode("utf-8"))


def main() -> None:
    """Entry point: a UsageError becomes one line on stderr and exit status 2, never a traceback."""
    try:
        app()
    except UsageError as exc:
        print(f"tableshift: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("tableshift: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except Exception as exc:  # a bug of ours: one line, and the traceback on request
        if os.environ.get("TABLESHIFT_DEBUG"):
            raise
        print(f"tableshift: internal error: {type(exc).__name__}: {exc} (set TABLESHIFT_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(EXIT_INTERNAL)
