"""Command line: parse arguments, run the pipeline, pick a reporter, set the exit status."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import errno
import gc
import os
import signal
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, BinaryIO, NoReturn, Optional

import typer

from tableshift import __version__
from tableshift.errors import UsageError

if TYPE_CHECKING:
    import tempfile

    from rich.console import Console

    from tableshift.config import Config
    from tableshift.discover import SourceFile
    from tableshift.engine import FileOutcome, Product, ScanResult, Settled
    from tableshift.memo import RunMemo
    from tableshift.options import Options as EngineOptions
    from tableshift.patching import PatchPart
    from tableshift.rules import RuleSet

# -q / -v / --color: global, accepted anywhere on the command line (see `_global_flags`)
_UI: dict[str, object] = {"quiet": False, "verbose": False, "color": "auto", "force_exclude": False, "stdin_filename": None}

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERNAL = 3
PROGRESS_MIN_FILES = 200
PIPED_WIDTH = 160
MEMO_MAX_BYTES = 64 << 20  # an audit whose calls take more than this in JSON is not kept in the run memo

app = typer.Typer(
    name="tableshift",
    help="Audit, patch and gate Supabase / PostgREST table usage during a table consolidation.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class AuditFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class CheckFormat(StrEnum):
    text = "text"
    github = "github"
    sarif = "sarif"
    json = "json"


class Only(StrEnum):
    reads = "reads"
    writes = "writes"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tableshift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No messages on stderr, only results and errors (any position).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say what the scan did: files, cache hits, time (any position).")] = False,
    color: Annotated[str, typer.Option("--color", help="auto, always or never; NO_COLOR is honoured (any position).")] = "auto",
    stdin_filename: Annotated[
        Optional[str], typer.Option("--stdin-filename", help="With `-` as the path: the name of the file whose code comes on stdin (any position).")
    ] = None,
    force_exclude: Annotated[
        bool, typer.Option("--force-exclude", help="Apply include / exclude to files named on the command line too, as pre-commit names them (any position).")
    ] = False,
) -> None:
    """tableshift: audit, patch and gate legacy-table usage in Supabase code."""


PathsArg = Annotated[
    Optional[list[Path]],
    typer.Argument(help="Files or directories to scan (default: the config's paths, else the current directory).", show_default=False),
]
LegacySchemaOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--legacy-schema",
        help="The legacy schema (DDL file or migrations folder; config: legacy_schema): an .rpc() of a function whose body uses a legacy table counts as using it.",
    ),
]
DatabaseUrlOpt = Annotated[
    Optional[str],
    typer.Option("--database-url", help="As --legacy-schema, from this PostgreSQL's schema (read with pg_dump; nothing runs there)."),
]
class CiKind(StrEnum):
    github = "github"


RulesOpt = Annotated[Optional[Path], typer.Option("--rules", "-r", help="Rules file (TOML) mapping legacy tables to targets.")]
IncludeOpt = Annotated[
    Optional[list[str]], typer.Option("--include", help="Only scan files matching this gitignore-style glob (repeatable).")
]
ExcludeOpt = Annotated[Optional[list[str]], typer.Option("--exclude", help="Skip files matching this gitignore-style glob (repeatable).")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per core).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the per-file cache.")]
CacheDirOpt = Annotated[
    Optional[Path],
    typer.Option("--cache-dir", envvar="TABLESHIFT_CACHE_DIR", help="Cache location (default: .tableshift-cache at the repository root)."),
]
MaxSizeOpt = Annotated[
    int, typer.Option("--max-file-size", min=1, help="Skip (and list) files larger than this many bytes.")
]
MinifiedOpt = Annotated[
    bool,
    typer.Option("--skip-minified/--no-skip-minified", help="Skip (and list) files that look minified or generated."),
]
DatabaseUrlOpt = Annotated[
    Optional[str],
    typer.Option(
        "--database-url",
        envvar="TABLESHIFT_DATABASE_URL",
        help="Take the schema of this PostgreSQL (read with pg_dump; nothing is written or run there) into the embedded server.",
    ),
]
ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", help="Config file (default: nearest tableshift.toml or pyproject.toml [tool.tableshift]).")
]


def _quiet_pipe(command: Callable[..., None]) -> Callable[..., None]:
    """A reader that goes away (`| head`) ends the run as it ends `cat`: killed by SIGPIPE, silent.

    SIGPIPE stays ignored while the run works (the process pool's own pipes must not kill it);
    only a closed standard output ends it, once the command has nothing else to finish.
    """

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing more reaches the closed pipe at exit
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGPIPE)

    return run


@dataclass(frozen=True, slots=True)
class Inputs:
    """What to scan and with which rules: flags first, then the config file, then defaults."""

    config: Config
    rules: RuleSet | None
    paths: tuple[Path, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    options: EngineOptions


@dataclass(frozen=True, slots=True)
class RunFlags:
    jobs: int = 0
    no_cache: bool = False
    cache_dir: Path | None = None
    max_file_size: int = 2_000_000
    skip_minified: bool = True


def _cache_dir(flags: RunFlags, config: Config) -> Path | None:
    if flags.no_cache:
        return None
    if flags.cache_dir is not None:
        return flags.cache_dir
    from tableshift.cache import CACHE_DIR
    from tableshift.discover import repository_root

    return (repository_root(Path.cwd()) or config.root or Path.cwd()) / CACHE_DIR


def _inputs(
    config_path: Path | None,
    paths: list[Path] | None,
    rules: Path | None,
    include: list[str] | None,
    exclude: list[str] | None,
    *,
    need_rules: bool,
    flags: RunFlags = RunFlags(),
) -> Inputs:
    from tableshift.config import load_config
    from tableshift.options import Options as EngineOptions
    from tableshift.rules import load_rules

    config = load_config(config_path, cwd=Path.cwd())
    rules_path = rules if rules is not None else config.rules
    if rules_path is None and need_rules:
        raise UsageError("no rules file: pass --rules FILE or set `rules` in tableshift.toml")
    return Inputs(
        config=config,
        rules=load_rules(rules_path) if rules_path is not None else None,
        paths=tuple(paths) if paths else (config.paths or (Path("."),)),
        include=tuple(include) if include else config.include,
        exclude=tuple(exclude) if exclude else config.exclude,
        options=EngineOptions(
            jobs=flags.jobs,
            cache_dir=_cache_dir(flags, config),
            max_file_size=flags.max_file_size,
            skip_minified=flags.skip_minified,
        ),
    )


def _sources(inputs: Inputs, *, only: set[Path] | None = None) -> list[SourceFile]:
    from tableshift.discover import discover

    if any(str(p) == "-" for p in inputs.paths):
        return [_stdin_source(inputs)]
    if inputs.options.cache_dir is None and any(Path(p).is_dir() for p in inputs.paths):
        # every file will be read and the candidates scanned: the pool's modules are imported
        # while git lists the files (with a cache, a run that finds nothing changed needs no pool)
        from tableshift import engine

        engine.prepare_pool(inputs.options.jobs)
    from tableshift import early

    sources = early.sources(inputs.paths, inputs.include, inputs.exclude)  # listed while this process started
    if sources is None:
        sources = discover(
            inputs.paths, include=inputs.include, exclude=inputs.exclude, pattern_base=inputs.config.root, force_exclude=bool(_UI["force_exclude"])
        )
    return sources if only is None else [s for s in sources if s.path.resolve() in only]


def _early_stop() -> None:
    from tableshift import early

    early.stop()


def _memo(inputs: Inputs, kind: str, sources: list[SourceFile], *material: object) -> RunMemo | None:
    """The run memo of this command and configuration (`tableshift.memo`), or None: without a
    cache, for code on stdin, with -v (which tells what the scan did), or for a command that reads
    a database for its report (the rules' digest already holds what the database's functions say)."""
    if inputs.options.cache_dir is None or _UI["verbose"] or any(str(p) == "-" for p in inputs.paths):
        return None
    from tableshift.discover import project_root
    from tableshift.memo import open_memo

    rules = inputs.rules
    root = inputs.options.root or project_root(sources)  # where the link pass resolves imports
    return open_memo(
        inputs.options.cache_dir,
        rules.digest if rules is not None else "-",
        kind,
        (
            root,
            inputs.paths,
            inputs.include,
            inputs.exclude,
            inputs.config.root,
            inputs.options.max_file_size,
            inputs.options.skip_minified,
            inputs.options.verify,
            (rules.path, rules.digest, rules.functions) if rules is not None else None,
            *material,
        ),
        sources,
    )


def _outcomes(inputs: Inputs, sources: list[SourceFile], settled: Settled | None = None, product: Product | None = None) -> Iterator[FileOutcome | bytes]:
    """Every file's outcome (or its `product`, see `engine.stream`), streamed, with a progress bar
    on a terminal for long scans."""
    if not sources:
        if _UI["verbose"]:
            _stderr_console().print("scanned 0 files", markup=False, highlight=False)
        return  # nothing to scan: not even the engine is loaded
    from tableshift import engine

    if _UI["verbose"]:
        yield from _timed(inputs, sources, settled)
        return

    if not sys.stderr.isatty() or len(sources) < PROGRESS_MIN_FILES:
        yield from engine.stream(sources, inputs.rules, options=inputs.options, settled=settled, product=product)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_stderr_console(), transient=True
    ) as progress:
        task = progress.add_task("scan", total=len(sources))
        yield from engine.stream(sources, inputs.rules, options=inputs.options, on_file=lambda _: progress.advance(task), settled=settled, product=product)


def _patch_scan(inputs: Inputs, part: PatchPart | None = None) -> tuple[list[SourceFile], Iterator[FileOutcome | bytes], Settled]:
    """The scan as `patch` needs it: the files, their slim outcomes as they stream (see
    `_slim_outcomes`), and the modules whose shared constants will be edited, known before the
    first outcome comes (`patching.run` holds back only those files and the ones relying on them).
    With a `part`, a file on its own comes as its part, rewritten where it was scanned."""
    from tableshift.engine import Settled

    sources = _sources(inputs)
    settled = Settled()
    return sources, _slim_outcomes(inputs, sources, settled) if part is None else _parts(inputs, sources, settled, part), settled


def _parts(inputs: Inputs, sources: list[SourceFile], settled: Settled, part: PatchPart) -> Iterator[FileOutcome | bytes]:
    from tableshift.engine import Product, Slim

    for item in _outcomes(inputs, sources, settled, Product(part.name, part)):
        yield item if isinstance(item, bytes) else Slim.of(item)


def _slim_outcomes(inputs: Inputs, sources: list[SourceFile], settled: Settled | None = None, *, memo: RunMemo | None = None) -> Iterator[FileOutcome]:
    """Outcomes as they stream, with only what `check`, `baseline` and `patch` read: the plans of
    calls that involve a legacy table (or may: dynamic ones); the other calls are let go as each
    file is done. With a memo, a tree unchanged since the last run gives them back from it."""
    from tableshift.engine import Product, Slim, unslim

    stored = memo.get() if memo is not None else None
    if stored is not None:
        _early_stop()  # nothing to read: the early process's reading is not needed
        kept, modules = stored
        if settled is not None:
            settled.modules = modules
        yield from kept
        return
    kept = []
    with memo if memo is not None else contextlib.nullcontext():
        for item in _outcomes(inputs, sources, settled, Product(Slim.name, Slim())):
            slim = unslim(item) if isinstance(item, bytes) else Slim.of(item)
            if memo is not None:
                kept.append(slim)
            yield slim
    if memo is not None:
        memo.put((kept, settled.modules if settled is not None else None))


_STDIN: list[tempfile.TemporaryDirectory[str]] = []  # the temporary folder holding what came on stdin, for the run (removed by `main`)


def _stdin_source(inputs: Inputs) -> SourceFile:
    """`-`: the code comes on standard input (an editor's buffer), named by --stdin-filename; it is
    scanned as that file. Names it imports from other modules are not followed (it is not on disk
    where they are)."""
    import tempfile

    from tableshift.discover import SourceFile, language_of

    if len(inputs.paths) != 1:
        raise UsageError("-: standard input is the only path when it is given")
    name = _UI["stdin_filename"]
    if not name:
        raise UsageError("-: pass --stdin-filename NAME, so tableshift knows the file's language and its name in reports")
    language = language_of(str(name))
    if language is None:
        raise UsageError(f"--stdin-filename {name}: not a file tableshift scans")
    folder = tempfile.TemporaryDirectory(prefix="tableshift-stdin-")
    _STDIN.append(folder)
    path = Path(folder.name) / Path(str(name)).name
    path.write_bytes(sys.stdin.buffer.read())
    display = Path(os.path.relpath(Path(str(name)).absolute(), Path.cwd())).as_posix()
    return SourceFile(path, display, language)


def _timed(inputs: Inputs, sources: list[SourceFile], settled: Settled | None = None) -> Iterator[FileOutcome]:
    """-v: the scan, then what it did."""
    import time

    from tableshift import engine

    start = time.perf_counter()
    yield from engine.stream(sources, inputs.rules, options=inputs.options, settled=settled)
    stats = engine.LAST_RUN
    _stderr_console().print(
        f"scanned {len(sources)} files in {time.perf_counter() - start:.2f} s: {stats.get('candidates', 0)} may hold calls,"
        f" {stats.get('cached', 0)} from the cache, {stats.get('parsed', 0)} parsed, {stats.get('skipped', 0)} skipped",
        markup=False,
        highlight=False,
    )


def _scan(inputs: Inputs, *, only: set[Path] | None = None) -> ScanResult:
    from tableshift.engine import ScanResult

    sources = _sources(inputs, only=only)
    return ScanResult(tuple(_outcomes(inputs, sources)), tuple(sources))


@app.command(short_help='Find and classify every Supabase query call.')
@_quiet_pipe
def audit(
    paths: PathsArg = None,
    rules: RulesOpt = None,
    format: Annotated[AuditFormat, typer.Option("--format", "-f", help="Report format.")] = AuditFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    config: ConfigOpt = None,
    jobs: JobsOpt = 0,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    max_file_size: MaxSizeOpt = 2_000_000,
    skip_minified: MinifiedOpt = True,
    legacy_schema: Annotated[
        Optional[Path],
        typer.Option(
            "--legacy-schema",
            help="Also list the database's own use of the tables (views, functions, triggers, policies, foreign keys, publications), from this DDL file or migrations folder; an .rpc() of a function using a legacy table then counts as using it.",
        ),
    ] = None,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Find and classify every Supabase query call; report usage and migration readiness."""
    from tableshift.engine import Product
    from tableshift.report import render
    from tableshift.report.audit import AuditBuilder, AuditPart
    from tableshift.report.sections import audit_sections

    _check_targets(output)
    inputs = _inputs(config, paths, rules, include, exclude, need_rules=False, flags=RunFlags(jobs, no_cache, cache_dir, max_file_size, skip_minified))
    legacy_schema = legacy_schema or inputs.config.legacy_schema
    uses, types = None, {}
    if inputs.rules is not None and (legacy_schema is not None or database_url):
        # read before the scan: an .rpc() of a function using a legacy table uses it
        inputs, uses, types = _through_functions(inputs, legacy_schema, database_url)
    sources = _sources(inputs)
    memo = _memo(inputs, "audit", sources, format.value) if legacy_schema is None and not database_url else None
    stored = memo.get() if memo is not None else None
    if stored is not None:  # nothing changed since the last run: its report
        _early_stop()  # nothing to read: the early process's reading is not needed
        report, extras, calls = stored
        spool = render.JsonSpool.of(*calls) if calls is not None else None
    else:
        # streamed: each file's calls are written out (or counted) as soon as the file is done
        spool = render.JsonSpool() if format is AuditFormat.json else None
        builder = AuditBuilder(inputs.rules, spool if spool is not None else _Discard())
        builder.legacy_types = types  # the types target_gaps gives the columns to add
        part = Product(AuditPart.name, AuditPart(inputs.rules))
        with memo if memo is not None else contextlib.nullcontext():
            for item in _outcomes(inputs, sources, product=part):
                if isinstance(item, bytes):
                    builder.merge(item)
                else:
                    builder.add(item)
        report = builder.header()
        extras = builder.extras() if spool is None else None
        if memo is not None and (spool is None or spool.size() <= MEMO_MAX_BYTES):
            memo.put((report, extras, (spool.bytes(), len(spool)) if spool is not None else None))
    if legacy_schema is not None or database_url:
        report["database"] = _database_use(inputs, report, legacy_schema, database_url, uses)
    title = "tableshift audit" + (f" — rules: {inputs.rules.name}" if inputs.rules else "")
    if spool is not None:
        _emit_with(lambda out: render.write_json({**report, "calls": spool}, out), output)
        return
    sections = audit_sections(report, extras)
    if format is AuditFormat.markdown:
        _emit(render.to_markdown(sections, title=title), output)
    elif output is not None:
        _emit(render.tables_to_text(sections, title=title), output)
    else:
        render.print_tables(sections, _stdout_console(), title=title)


def _database_reads(inputs: Inputs, tables: list[tuple[str, str]], legacy_schema: Path | None, database_url: str | None) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """What in the database uses each table, and each (table, column)'s type."""
    from tableshift.db import session, usage

    with session.schemas(inputs.rules, legacy_schema, database_url, tables={f"{s}.{n}" for s, n in tables}) as conn:
        uses = usage.read(conn, tables, dropped=_dropped(inputs), renamed=_renamed(inputs))
        types = {}
        for schema, name in tables:
            for column, kind in conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
                (schema, name),
            ).fetchall():
                types[(name if schema == "public" else f"{schema}.{name}", column)] = kind
    return uses, types


def _through_functions(inputs: Inputs, legacy_schema: Path | None, database_url: str | None) -> tuple[Inputs, dict, dict]:  # type: ignore[type-arg]
    """The rules, knowing which database functions use legacy tables (an .rpc() of one uses them),
    what in the database uses each legacy table, and the legacy columns' types."""
    from tableshift.db import usage

    assert inputs.rules is not None
    tables = [(r.schema or "public", r.legacy) for r in inputs.rules.tables]
    uses, types = _database_reads(inputs, tables, legacy_schema, database_url)
    return dataclasses.replace(inputs, rules=inputs.rules.with_functions(usage.rpc_functions(uses))), uses, types


def _database_use(inputs: Inputs, report: dict, legacy_schema: Path | None, database_url: str | None, uses: dict | None = None) -> dict:  # type: ignore[type-arg]
    """What in the database uses each legacy table (with rules), else each table the code uses."""
    if inputs.rules is not None:
        tables = [(r.schema or "public", r.legacy) for r in inputs.rules.tables]
    else:
        tables = [(t["name"].rpartition(".")[0] or "public", t["name"].rpartition(".")[2]) for t in report["tables"]]
    if uses is None:
        uses = _database_reads(inputs, tables, legacy_schema, database_url)[0]
    return {
        "source": str(legacy_schema) if legacy_schema is not None else "--database-url",
        "tables": [
            {"table": name if schema == "public" else f"{schema}.{name}", "found": (schema, name) in uses, "uses": [u.as_dict() for u in uses.get((schema, name), [])]}
            for schema, name in tables
        ],
    }


def _functions_known(inputs: Inputs, legacy_schema: Path | None, database_url: str | None) -> Inputs:
    """`baseline` and `check`: with a legacy schema (flag or config), rpc calls of functions using
    legacy tables count as uses; without one, they are not seen."""
    legacy_schema = legacy_schema or inputs.config.legacy_schema
    if inputs.rules is None or (legacy_schema is None and not database_url):
        return inputs
    return _through_functions(inputs, legacy_schema, database_url)[0]


def _dropped(inputs: Inputs) -> dict[tuple[str, str], set[str]]:
    if inputs.rules is None:
        return {}
    return {(r.schema or "public", r.legacy): set(r.drop) for r in inputs.rules.tables}


def _renamed(inputs: Inputs) -> dict[tuple[str, str], dict[str, str]]:
    if inputs.rules is None:
        return {}
    return {(r.schema or "public", r.legacy): dict(r.renames) for r in inputs.rules.tables}


class _Discard:
    def append(self, _entry: object) -> None:
        pass

    def extend(self, _chunk: bytes, _count: int) -> None:
        pass


@app.command(short_help='Rewrite legacy-table calls; print a patch.')
@_quiet_pipe
def patch(
    paths: PathsArg = None,
    rules: RulesOpt = None,
    only: Annotated[Optional[Only], typer.Option("--only", help="Rewrite only reads (select) or only writes.")] = None,
    table: Annotated[Optional[list[str]], typer.Option("--table", help="Only calls on this legacy table (repeatable).")] = None,
    group: Annotated[Optional[list[str]], typer.Option("--group", help="Only calls on this rules group (repeatable).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the patch to this file.")] = None,
    split_dir: Annotated[Optional[Path], typer.Option("--split-dir", help="Write one patch per rules group into this directory.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Edit the files in place (atomically) instead of printing a patch.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the full coverage report (.md or .json).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; list the files a patch would change and exit 1 if there are any.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Check each rewrite with PostgreSQL first: a call it rejects is review, with its message.")] = False,
    legacy_schema: Annotated[Optional[Path], typer.Option("--legacy-schema", help="With --verify: the legacy tables' DDL.")] = None,
    database_url: DatabaseUrlOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    config: ConfigOpt = None,
    jobs: JobsOpt = 0,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    max_file_size: MaxSizeOpt = 2_000_000,
    skip_minified: MinifiedOpt = True,
) -> None:
    """Rewrite legacy-table calls to the consolidated tables; print a unified diff and a coverage summary."""
    from tableshift import patching
    from tableshift.memo import answer

    if apply and any(str(p) == "-" for p in (paths or ())):
        raise UsageError("--apply cannot write code that came on stdin: print the patch, or name the file")
    if sum(x is not None and x is not False for x in (output, split_dir, apply or None, check or None)) > 1:
        raise UsageError("--output, --split-dir, --apply and --check exclude each other: pick one")
    if report is not None and report.suffix.lower() not in (".md", ".json"):
        raise UsageError(f"{report}: --report takes a .md or .json file")
    if split_dir is not None:  # made first, so that --report may point into it
        from tableshift.fsutil import check_place

        check_place(split_dir)  # never made through a link out of the repository
        try:
            split_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{split_dir}: cannot create directory: {exc.strerror}") from None
    _check_targets(report, output)
    inputs = _inputs(config, paths, rules, include, exclude, need_rules=True, flags=RunFlags(jobs, no_cache, cache_dir, max_file_size, skip_minified))
    assert inputs.rules is not None
    selection = patching.selection(inputs.rules, only=only.value if only else None, tables=table or (), groups=group or ())
    import dataclasses

    # each rewrite is parsed again where its file is parsed: in the workers, in parallel
    inputs = dataclasses.replace(inputs, options=dataclasses.replace(inputs.options, verify=True))
    if verify:
        from tableshift.db import verify as verifying

        scanned = _scan(inputs)
        scanned = verifying.demote(scanned, _verified(inputs, scanned, legacy_schema, database_url))
    elif legacy_schema is not None or database_url:
        raise UsageError("--legacy-schema and --database-url go with --verify")
    else:
        scanned = _patch_scan(inputs, None if apply else patching.PatchPart(inputs.rules, selection, split=split_dir is not None))
    # an unchanged tree's patch is the last run's (never when it edits the files or asks a database)
    memo = None if apply or verify else _memo(inputs, "patch", list(scanned[0]), selection, split_dir is not None, check)
    outcome = answer(
        memo,
        lambda: patching.run(
            scanned,
            inputs.rules,
            selection,
            split=split_dir is not None,
            cache_dir=inputs.options.cache_dir,
            apply=apply,
            diffs=not check,
            err=_Lines(),
        ),
    )
    status = patching.emit(outcome, output=output, split_dir=split_dir, check=check, err=_Lines())
    patching.write_report(outcome, report)
    if report is not None:
        _wrote(report)
    raise typer.Exit(status)


class Phase(StrEnum):
    expand = "expand"
    backfill = "backfill"
    parity = "parity"
    contract = "contract"


@app.command(short_help='Write the migration SQL of each phase.')
@_quiet_pipe
def sql(
    rules: RulesOpt = None,
    legacy_schema: Annotated[
        Optional[Path],
        typer.Option("--legacy-schema", help="The legacy tables' DDL: a pg_dump / supabase db dump file, or a folder of migrations."),
    ] = None,
    phase: Annotated[Optional[Phase], typer.Option("--phase", help="One phase (default: all four, in order).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the SQL to this file instead of stdout.")] = None,
    archive_schema: Annotated[str, typer.Option("--archive-schema", help="Where `contract` moves the legacy tables.")] = "archive",
    database_url: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    prelude: Annotated[
        bool, typer.Option("--prelude", help="Print what a Supabase project provides (the stand-ins loaded before your schemas) and stop.")
    ] = False,
) -> None:
    """Write the migration SQL of each phase: expand (targets, dual-write triggers), backfill, parity, contract."""
    from tableshift.db import migration

    _check_targets(output)
    if prelude:
        from tableshift.db import load

        _emit(load.prelude_text(), output)
        return
    inputs = _inputs(config, None, rules, None, None, need_rules=True)
    assert inputs.rules is not None
    if not inputs.rules.schema_path:
        raise UsageError(f"{inputs.rules.path}: `sql` needs the target tables' DDL: set `schema` in the rules")
    if legacy_schema is None and not database_url:
        raise UsageError("--legacy-schema FILE (or a folder of migrations) is required without --database-url")
    if not archive_schema or "\0" in archive_schema:
        raise UsageError("--archive-schema: must name a schema")
    ddl_path = Path(inputs.rules.schema_path)
    from tableshift.fsutil import read_input

    ddl = read_input(ddl_path, what="schema").decode("utf-8", "replace")
    phases = [phase.value] if phase is not None else list(migration.PHASES)
    with _schemas(inputs, legacy_schema, database_url) as conn:
        plan = migration.moves(conn, inputs.rules)
        # every phase up to the last asked for is written, and run on the loaded schemas first
        upto = max(migration.PHASES.index(p) for p in phases)
        from tableshift.db import usage

        legacy = {(m.legacy.schema, m.legacy.name): m.around for m in plan}  # read with the plan already
        uses = usage.read(conn, list(legacy), dropped=_dropped(inputs), renamed=_renamed(inputs), known=legacy)
        scripts = {
            p: migration.script(p, inputs.rules, plan, ddl=ddl, schema_file=ddl_path.name, archive=archive_schema, uses=uses)
            for p in migration.PHASES[: upto + 1]
        }
        migration.rehearse(conn, scripts)
    text = "\n".join(scripts[p] for p in phases)
    from tableshift.report.escape import printable

    for warning in migration.warnings(plan, phases):
        print(f"tableshift: warning: {printable(warning)}", file=sys.stderr)
    _emit(text, output)


@app.command(short_help="Write tableshift.toml and a rules skeleton from an audit.")
@_quiet_pipe
def init(
    paths: PathsArg = None,
    rules_file: Annotated[Path, typer.Option("--rules-file", help="Where to write the rules skeleton.")] = Path("tableshift-rules.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    ci: Annotated[Optional[CiKind], typer.Option("--ci", help="Also write the CI workflow that runs `tableshift check` (github: .github/workflows/tableshift.yml).")] = None,
    pre_commit: Annotated[bool, typer.Option("--pre-commit", help="Also write .pre-commit-config.yaml with tableshift's hook.")] = False,
    merge: Annotated[Optional[list[str]], typer.Option("--merge", help="Tables that merge into one: a,b=target (repeat the flag). Drafts the rules and the target DDL from the legacy schema.")] = None,
    rename: Annotated[Optional[list[str]], typer.Option("--rename", help="A table that moves under a new name: legacy=target (repeat the flag).")] = None,
    legacy_schema: Annotated[Optional[Path], typer.Option("--legacy-schema", help="The legacy schema (a dump or a migrations folder) --merge / --rename draft from.")] = None,
    database_url: DatabaseUrlOpt = None,
    schema_file: Annotated[Path, typer.Option("--schema-file", help="Where --merge / --rename write the drafted target DDL.")] = Path("target-schema.sql"),
) -> None:
    """Write tableshift.toml and a rules skeleton listing every table the audit finds, most used first."""
    from tableshift import scaffold
    from tableshift.report.audit import AuditBuilder
    from tableshift.report.escape import printable

    config_file = Path("tableshift.toml")
    extra: list[tuple[Path, str]] = []
    source = scaffold.installed_from()
    drafted = None
    if merge or rename:
        from tableshift import draft

        moves = draft.parse_moves(merge or [], rename or [])
        if legacy_schema is None and not database_url:
            raise UsageError("--merge / --rename draft from the legacy schema: give --legacy-schema PATH or --database-url URL")
        extra.append((schema_file, ""))  # written below, checked with the others first
    if ci is CiKind.github:
        extra.append((Path(".github/workflows/tableshift.yml"), scaffold.github_workflow(source)))
    if pre_commit:
        extra.append((Path(".pre-commit-config.yaml"), scaffold.pre_commit(source)))
    for target in (config_file, rules_file, *(p for p, _ in extra)):
        if target.exists() and not force:
            raise UsageError(f"{target} exists: edit it, or pass --force to write it again")
    _check_targets(config_file, rules_file, *(p for p, _ in extra))
    if merge or rename:
        from tableshift.db import session

        legacy = {name for move in moves for name in move.legacy}
        with session.schemas(None, legacy_schema, database_url, tables={f"public.{n}" for n in legacy}) as conn:
            drafted = draft.draft(conn, moves, name=Path.cwd().name or "consolidation", schema_file=os.path.relpath(schema_file, rules_file.parent or "."))
        extra = [(p, drafted.ddl if p == schema_file else text) for p, text in extra]
    inputs = _inputs(None, paths, None, None, None, need_rules=False)
    builder = AuditBuilder(None, _Discard())
    for outcome in _outcomes(inputs, _sources(inputs)):
        builder.add(outcome)
    tables = builder.header()["tables"]
    scanned = [p.as_posix() for p in inputs.paths]
    config = [
        "# tableshift configuration: `tableshift audit`, `patch`, `check` and `baseline` read it from here.",
        f"rules = {_toml_string(rules_file.as_posix())}",
        'baseline = "tableshift-baseline.json"',
        "paths = [" + ", ".join(_toml_string(p) for p in scanned) + "]",
        "# exclude = [\"src/generated/\"]",
        "# strict = true   # dynamic calls that may be legacy fail `check` too",
        "",
    ]
    name = Path.cwd().name or "consolidation"
    rules = [
        "# tableshift rules: which legacy tables move where. Uncomment the tables that move and name",
        "# their targets; add `renames`, `drop`, `where` and `set` as the README's Rules files section",
        "# describes. Tables are listed most used first, as `tableshift audit` found them.",
        "version = 1",
        f"name = {_toml_string(name)}",
        '# schema = "target-schema.sql"   # the targets\' DDL: columns are checked against it',
    ]
    for t in tables:
        ops = t["operations"]
        reads = ops.get("select", 0)
        writes = sum(ops.get(o, 0) for o in ("insert", "update", "upsert", "delete"))
        rules += [
            "",
            f"# {_toml_comment(t['name'])}: {t['calls']} calls ({reads} reads, {writes} writes) in {t['files']} files",
            "# [[table]]",
            f"# legacy = {_toml_string(t['name'])}",
            '# target = ""',
        ]
    from tableshift.fsutil import write_atomic

    if drafted is not None:  # the rules the plan says, not a skeleton to fill in
        rules = [drafted.rules.rstrip("\n")]
    write_atomic(config_file, "\n".join(config).encode())
    write_atomic(rules_file, ("\n".join(rules) + "\n").encode())
    err = _stderr_console()
    _wrote(config_file)
    for path, text in extra:
        write_atomic(path, text.encode())
        _wrote(path)
    if (ci is not None or pre_commit) and not source.known:
        err.print(
            "this tableshift was not installed from git: edit the repository and commit in what --ci / --pre-commit wrote",
            markup=False,
            highlight=False,
        )
    if drafted is not None:
        err.print(f"wrote {printable(str(rules_file))}: the rules drafted from --merge / --rename; review them", markup=False, highlight=False)
        for note in drafted.notes:
            err.print(f"  review: {printable(note)}", markup=False, highlight=False)
        return
    err.print(
        f"wrote {printable(str(rules_file))}: {len(tables)} tables found; uncomment the ones that move and name their targets",
        markup=False,
        highlight=False,
    )


def _toml_string(text: str) -> str:
    """A TOML basic string: every control character escaped, so no name can end the line it is on."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\x85\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _toml_comment(text: str) -> str:
    """Text as it may stand in a TOML comment: on one line, control characters shown escaped."""
    return _toml_string(text)[1:-1]


class VerifyFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command(short_help='Check calls before and after rewrite in PostgreSQL.')
@_quiet_pipe
def verify(
    paths: PathsArg = None,
    rules: RulesOpt = None,
    legacy_schema: Annotated[
        Optional[Path],
        typer.Option("--legacy-schema", help="The legacy tables' DDL (dump or migrations folder): calls are checked before their rewrite too."),
    ] = None,
    database_url: DatabaseUrlOpt = None,
    format: Annotated[VerifyFormat, typer.Option("--format", "-f", help="Report format.")] = VerifyFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    config: ConfigOpt = None,
    jobs: JobsOpt = 0,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    max_file_size: MaxSizeOpt = 2_000_000,
    skip_minified: MinifiedOpt = True,
    aggregates: Annotated[
        bool,
        typer.Option("--aggregates", help="The project's PostgREST has db-aggregates-enabled on (off by default): check `x.sum()`, `count()` as queries."),
    ] = False,
) -> None:
    """Check every call to a legacy or target table, before and after its rewrite, with a real PostgreSQL (EXPLAIN, rolled back)."""
    from tableshift.report.escape import json_text

    _check_targets(output)
    inputs = _inputs(config, paths, rules, include, exclude, need_rules=True, flags=RunFlags(jobs, no_cache, cache_dir, max_file_size, skip_minified))
    assert inputs.rules is not None
    checked = _verified(inputs, _scan(inputs), legacy_schema, database_url, aggregates=aggregates)
    from tableshift.db import verify as verifying

    data = verifying.report(checked, inputs.rules)
    if format is VerifyFormat.json:
        _emit(json_text(data), output)
    elif format is VerifyFormat.markdown:
        _emit(verifying.markdown(data), output)
    else:
        _emit(verifying.text(data), output)
    raise typer.Exit(1 if data["summary"]["errors"] else 0)


def _verified(inputs: Inputs, result: ScanResult, legacy_schema: Path | None, database_url: str | None, *, aggregates: bool = False):  # type: ignore[no-untyped-def]
    """The scan's calls checked by PostgreSQL: the legacy schema (when given) and the rules' target DDL
    loaded into the embedded server, or read from the user's database (rolled back)."""
    from tableshift.db import verify as verifying

    assert inputs.rules is not None
    if not inputs.rules.schema_path and not database_url:
        raise UsageError(f"{inputs.rules.path}: verifying needs the target tables' DDL: set `schema` in the rules, or pass --database-url")
    with _schemas(inputs, legacy_schema, database_url) as conn:
        loaded = {r.legacy for r in inputs.rules.tables if _exists(conn, (f"{r.schema}." if r.schema else "") + r.legacy)}
        return verifying.run(result, inputs.rules, conn, legacy_loaded=loaded, aggregates=aggregates)


@contextlib.contextmanager
def _schemas(inputs: Inputs, legacy_schema: Path | None, database_url: str | None):  # type: ignore[no-untyped-def]
    """A connection to the embedded server holding the schemas (see db.session.schemas)."""
    from tableshift.db import session

    assert inputs.rules is not None
    with session.schemas(inputs.rules, legacy_schema, database_url) as conn:
        yield conn


def _exists(conn, table: str) -> bool:  # type: ignore[no-untyped-def]
    from tableshift.db import session

    return session.exists(conn, table)


def _check_targets(*paths: Path | None) -> None:
    from tableshift.fsutil import check_target

    for path in paths:
        if path is not None:
            check_target(path)


def _baseline_path(flag: Path | None, config: Config) -> Path:
    from tableshift.config import DEFAULT_BASELINE

    if flag is not None:
        return flag
    if config.baseline is not None:
        return config.baseline
    return (config.root or Path(".")) / DEFAULT_BASELINE


@app.command(short_help="Record today's legacy-table usage.")
@_quiet_pipe
def baseline(
    paths: PathsArg = None,
    rules: RulesOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Baseline file (default: the config's, else tableshift-baseline.json).")] = None,
    update: Annotated[bool, typer.Option("--update", help="Only lower the existing baseline's counts (a ratchet); never raise or add.")] = False,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    config: ConfigOpt = None,
    jobs: JobsOpt = 0,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    max_file_size: MaxSizeOpt = 2_000_000,
    skip_minified: MinifiedOpt = True,
    legacy_schema: LegacySchemaOpt = None,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Record today's legacy-table usage, so that `check` fails only on new usage."""
    from tableshift import gate

    inputs = _inputs(config, paths, rules, include, exclude, need_rules=True, flags=RunFlags(jobs, no_cache, cache_dir, max_file_size, skip_minified))
    assert inputs.rules is not None
    inputs = _functions_known(inputs, legacy_schema, database_url)
    path = _baseline_path(output, inputs.config)
    _check_targets(path)
    sources = _sources(inputs)
    new, old = gate.write_baseline(_slim_outcomes(inputs, sources, memo=_memo(inputs, "slim", sources)), inputs.rules, path, update=update, cwd=Path.cwd())
    from tableshift.report.check import plural
    from tableshift.report.escape import printable

    if old is None:
        _say(f"wrote {printable(str(path))}: {plural(new.total, 'legacy use')} in {plural(len(new.files), 'file')}")
    else:
        _say(f"updated {printable(str(path))}: {old.total:,} → {plural(new.total, 'legacy use')} allowed")


@app.command(short_help='Fail on new legacy-table usage (CI gate).')
@_quiet_pipe
def check(
    paths: PathsArg = None,
    rules: RulesOpt = None,
    baseline_file: Annotated[Optional[Path], typer.Option("--baseline", help="Baseline file (default: the config's, else tableshift-baseline.json).")] = None,
    format: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.text,
    changed_since: Annotated[Optional[str], typer.Option("--changed-since", help="Only files changed against this git ref, plus untracked ones.")] = None,
    strict: Annotated[Optional[bool], typer.Option("--strict/--no-strict", help="Dynamic calls that may be legacy fail the check too.", show_default=False)] = None,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Report findings but exit 0 (errors of usage still exit 2).")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the result to this file instead of stdout.")] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    config: ConfigOpt = None,
    jobs: JobsOpt = 0,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    max_file_size: MaxSizeOpt = 2_000_000,
    skip_minified: MinifiedOpt = True,
    legacy_schema: LegacySchemaOpt = None,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Fail (exit 1) when code adds legacy-table usage beyond the committed baseline."""
    from tableshift import gate
    from tableshift.discover import changed_since as changed
    from tableshift.memo import answer
    from tableshift.report import check as check_report

    inputs = _inputs(config, paths, rules, include, exclude, need_rules=True, flags=RunFlags(jobs, no_cache, cache_dir, max_file_size, skip_minified))
    assert inputs.rules is not None
    _check_targets(output)
    inputs = _functions_known(inputs, legacy_schema, database_url)
    path = _baseline_path(baseline_file, inputs.config)
    # git runs where the code is: the first path's folder (or the config's), not necessarily here
    first = inputs.paths[0] if inputs.paths else Path(".")
    where = first if first.is_dir() else first.parent
    only = changed(changed_since, cwd=where.resolve()) if changed_since else None
    from tableshift import baseline as bl

    sources = _sources(inputs, only=only)
    strict = inputs.config.strict if strict is None else strict
    # the verdict of an unchanged tree against an unchanged baseline (the same bytes, read and
    # found sound by the run that kept it) is the last run's
    memo = _memo(inputs, "check", sources, str(path), _file_digest(path), strict) if inputs.options.cache_dir is not None else None

    def gated() -> gate.GateResult:
        # read first: a broken baseline fails before the scan, and parsing it never adds to the scan's peak
        allowed = bl.load(path, inputs.rules)
        return gate.run_check(_slim_outcomes(inputs, sources), inputs.rules, path, baseline=allowed, strict=strict, cwd=Path.cwd())  # compared as they stream

    result = answer(memo, gated)
    color = output is None and format is CheckFormat.text and _colored(sys.stdout)
    text = check_report.render(format.value, result.data, result.comparison, inputs.rules, color=color)
    _emit(text, output)
    if output is not None or format in (CheckFormat.sarif, CheckFormat.json):
        _say(check_report.summary_line(result.data))
    raise typer.Exit(0 if exit_zero else result.exit_status)


def _file_digest(path: Path) -> str:
    """The digest of an input file read as inputs are (never a device or FIFO read forever); "-"
    when it cannot be read (what reads it then says why)."""
    import hashlib

    from tableshift.fsutil import read_input

    try:
        return hashlib.sha256(read_input(path, "baseline")).hexdigest()
    except (OSError, UsageError):
        return "-"


def _stderr_console() -> Console:
    """Messages are lines a script may read: never hard-wrapped, whatever the width; none with -q."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, quiet=bool(_UI["quiet"]), **_color_args())


def _color() -> str:
    """--color always|never|auto; NO_COLOR (any value) turns colour off unless --color always."""
    mode = str(_UI["color"])
    return "never" if mode == "auto" and os.environ.get("NO_COLOR") else mode


def _color_args() -> dict[str, object]:
    mode = _color()
    if mode == "always":
        return {"force_terminal": True, "no_color": False}
    return {"no_color": True} if mode == "never" else {}


def _colored(stream: object) -> bool:
    """Whether text written to `stream` should carry colour."""
    mode = _color()
    if mode != "auto":
        return mode == "always"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _wrote(path: Path | str) -> None:
    """Every file a command writes is announced the same way, on stderr (none with -q)."""
    from tableshift.report.escape import printable

    _say(f"wrote {printable(str(path))}")


class _Lines:
    """`_say` behind the one method `patching` calls on its `err` (`patching.Lines`)."""

    def print(self, line: str, **_options: object) -> None:
        _say(line)


def _say(line: str) -> None:
    """One plain line on stderr, as `_stderr_console().print(line, markup=False, highlight=False)`
    writes it, without loading rich for it (a warm run is a tenth of a second: rich is a fifth of
    that); none with -q."""
    if _UI["quiet"]:
        return
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except UnicodeEncodeError:  # a stderr that cannot show the text: as rich would, replaced
        sys.stderr.buffer.write((line + "\n").encode(sys.stderr.encoding or "utf-8", "replace"))
        sys.stderr.flush()


def _stdout_console() -> Console:
    """Rich on a terminal; wide plain text when piped, so names are never folded."""
    from rich.console import Console

    console = Console(**_color_args())
    console = console if console.is_terminal else Console(width=PIPED_WIDTH, **_color_args())
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]  # rich would exit 1; see _quiet_pipe
    return console


def _broken_pipe() -> None:
    raise BrokenPipeError


def _emit_with(write: Callable[[BinaryIO], None], output: Path | None) -> None:
    """Stream bytes to stdout, or to a file through a temporary file and a rename."""
    if output is None:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    from tableshift.fsutil import atomic_writer

    with atomic_writer(output) as handle:
        write(handle)

    _wrote(output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from tableshift.fsutil import write_atomic

    write_atomic(output, text.encode("utf-8"))
    _wrote(output)


# What the machine ran out of, not what tableshift got wrong: one line, exit status 2.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE, errno.ENOMEM}


def printable_text(text: str) -> str:
    from tableshift.report.escape import printable

    return printable(text)


def _internal(exc: BaseException) -> NoReturn:
    if os.environ.get("TABLESHIFT_DEBUG"):
        raise exc
    print(
        f"tableshift: internal error: {type(exc).__name__}: {exc} (set TABLESHIFT_DEBUG=1 for a traceback)",
        file=sys.stderr,
    )
    sys.exit(EXIT_INTERNAL)


def main() -> None:
    """Entry point: every error is one line on stderr with its exit status, never a traceback."""
    # A short-lived run that builds many small acyclic records: the cycle collector only costs time.
    gc.disable()
    _signals()
    try:
        sys.argv[1:] = _global_flags(sys.argv[1:])
    except UsageError as exc:
        print(f"tableshift: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if "--help" in sys.argv or "-h" in sys.argv or len(sys.argv) == 1:
        _plain_help()
    commands = app.registered_commands
    app.registered_commands = _invoked(commands, sys.argv[1:])
    try:
        status = app(standalone_mode=False, prog_name="tableshift")
    except UsageError as exc:
        print(f"tableshift: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except (KeyboardInterrupt, typer.Abort):
        _SIGNAL[0] = _SIGNAL[0] or signal.SIGINT
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            _internal(exc)
        # the disk, not tableshift: temporary files were removed on the way out
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tableshift: error: {printable_text(where)}{exc.strerror}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except Exception as exc:
        if _is_cli_usage_error(exc):
            sys.exit(_usage_error(exc))
        _internal(exc)
    finally:
        app.registered_commands = commands
        while _STDIN:  # the entry point leaves without the interpreter's teardown, which would remove it
            with contextlib.suppress(OSError):
                _STDIN.pop().cleanup()
    if _SIGNAL[0]:
        # typer turns an interrupt into a silent 130; temporary files are gone, workers killed
        print("tableshift: terminated" if _SIGNAL[0] == signal.SIGTERM else "tableshift: interrupted", file=sys.stderr)
        # leave now: the process pool's exit hook would wait on queues that killed workers left
        # half-written; every temporary file was removed on the way here
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + _SIGNAL[0])
    sys.exit(status if isinstance(status, int) else EXIT_OK)


def entry() -> NoReturn:
    """The program's entry point (the `tableshift` command, `python -m tableshift`): `main`, then an
    exit that skips the interpreter's teardown when nothing is left for it to do.

    By then every output is written and flushed (files through a rename), the cache committed and
    the pool's workers joined: freeing the run's objects one by one and a last collection of the
    cycles would only cost time, a fifth of a warm run on a large tree (mypy leaves the same way).
    A run that touched a database, or left a thread or a child process behind, exits as Python does.
    """
    try:
        main()
    except SystemExit as exc:
        status = exc.code
        if not isinstance(status, int) or not _nothing_left():
            raise
    else:  # main always exits; kept for a caller that patches it
        status = EXIT_OK
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: Python's own exit reports it as it always has
        sys.exit(status)
    os._exit(status)


def _nothing_left() -> bool:
    """Nothing for the interpreter's teardown to finish: no database connection or server (they
    close on their own way out), no other thread, no child process still running."""
    import threading

    engine = sys.modules.get("tableshift.engine")
    if engine is not None:
        engine._prepared()  # the pool's modules, imported in a thread while git listed the files
    if "psycopg" in sys.modules or "tableshift.db.server" in sys.modules or threading.active_count() > 1:
        return False
    children = sys.modules.get("multiprocessing")
    return children is None or not children.active_children()


_SWITCHES = {"-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose", "--force-exclude": "force_exclude"}
_VALUED = {"--stdin-filename": ("stdin_filename", "a file name"), "--color": ("color", "a value: auto, always or never")}


def _invoked(commands: list, args: list[str]) -> list:  # type: ignore[type-arg]
    """The command the first argument names, alone, else all: typer builds each registered
    command's options from its signature on every run (a tenth of a warm run), and only the one
    invoked is ever used. Shell completion, which may list them all, gets them all."""
    if not args or any(key.startswith("_TABLESHIFT_COMPLETE") for key in os.environ):
        return commands
    from typer.main import get_command_name  # the name typer gives a command it was not told one

    named = [c for c in commands if (c.name or get_command_name(c.callback.__name__)) == args[0]]
    return named if len(named) == 1 else commands


def _global_flags(args: list[str]) -> list[str]:
    """Take -q/--quiet, -v/--verbose, --force-exclude, --color WHEN and --stdin-filename NAME from
    anywhere before `--`, as ruff and eslint do."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, inline = arg.partition("=")
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in _SWITCHES:
            _UI[_SWITCHES[arg]] = True
        elif flag in _VALUED:
            key, what = _VALUED[flag]
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"{flag} needs {what}")
                i += 1
                inline = args[i]
            if key == "color" and inline not in ("auto", "always", "never"):
                raise UsageError(f"--color {inline}: expected auto, always or never")
            _UI[key] = inline
        else:
            out.append(arg)
        i += 1
    return out


def _plain_help() -> None:
    """typer escapes `[default: x]` for rich even when help is plain text: undo it, so help reads
    `[default: text]`, not `\\[default: text]`."""
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - rich is a dependency
        return
    rich_utils.escape_before_html_export = lambda text: text.strip()  # type: ignore[assignment]


_SIGNAL = [0]  # the signal that ended the run, if one did


def _signals() -> None:
    """SIGTERM ends a run as Ctrl-C does: cleanly, with no temporary file left beside user code.
    """

    def terminate(signum: int, _frame: object) -> None:
        _SIGNAL[0] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, terminate)


def _is_cli_usage_error(exc: BaseException) -> bool:
    """Typer's usage errors (from its vendored click), recognised by shape: their module is private."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def _usage_error(exc: Exception) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        print(ctx.get_help(), file=sys.stderr)
    else:
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"tableshift: error: {exc.format_message()}{hint}", file=sys.stderr)  # type: ignore[attr-defined]
    return int(getattr(exc, "exit_code", EXIT_USAGE))
