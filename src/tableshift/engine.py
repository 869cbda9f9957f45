"""One file in, one outcome out: read, scan, classify, plan. Never raises for a single file."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tableshift import cores, memo
from tableshift.cache import dumps
from tableshift.classify import classify
from tableshift.discover import SourceFile
from tableshift.fsutil import read_bytes
from tableshift.model import Call, FileResult, Status, TableArg, Verdict
from tableshift.patch import OverlappingEdits, apply_edits
from tableshift.reading import digest, read_verdict
from tableshift.rewrite import ConstantEdit, Plan, plan, settle_shared
from tableshift.rules import RuleSet
from tableshift.scan import error_count, error_count_edited, scan_source

if TYPE_CHECKING:
    import threading

    from tableshift.link.callsites import CallSite, Helper
    from tableshift.link.constants import Key, Member
    from tableshift.link.linker import Linker
    from tableshift.model import Origin

from tableshift.options import DEFAULT_MAX_FILE_SIZE, Options  # noqa: F401  (re-exported)
# below this, starting processes costs more than it saves; the pool starts with the first full batch
# (at 16, the first pass read 121 of capgo's files, 23 ms, before the workers had anything to do)
PARALLEL_MIN_FILES = 8
BATCH_MAX = 8  # small batches: the last ones end together (32 left one worker 0.2 s alone on capgo)
MAX_WORKERS_PER_CORE = 4


@dataclass(unsafe_hash=True, slots=True)
class FileOutcome:
    result: FileResult
    verdicts: tuple[Verdict, ...]
    plans: tuple[Plan, ...]  # one per verdict when rules were given, else none
    digest: str  # of the bytes scanned, to detect a file that changed before --apply
    # patch: the file with every planned edit made, checked where the file was parsed (in a worker):
    # (digest of those bytes, their syntax-error count)
    verified: tuple[str, int] | None = None


@dataclass(unsafe_hash=True, slots=True)
class ScanResult:
    """Every file's outcome, in file order; the same for audit, patch and check."""

    outcomes: tuple[FileOutcome, ...]
    sources: tuple[SourceFile, ...] = ()

    @property
    def files(self) -> tuple[FileResult, ...]:
        return tuple(o.result for o in self.outcomes)

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        return tuple(v for o in self.outcomes for v in o.verdicts)

    @property
    def plans(self) -> tuple[Plan, ...]:
        return tuple(p for o in self.outcomes for p in o.plans)


def analyse(source: SourceFile, data: bytes, rules: RuleSet | None, *, verify: bool = False, candidate: bool = False) -> FileOutcome:
    """The per-file unit of work, on bytes already read: scan, classify, plan. Never raises."""
    result = scan_source(data, path=source.display, language=source.language, candidate=candidate)
    verdicts = tuple(classify(call, rules) for call in result.calls)
    plans = settle_shared(tuple(plan(v, rules, data) for v in verdicts)) if rules is not None else ()
    return FileOutcome(result, verdicts, plans, digest(data), _verified(data, plans, source.language) if verify else None)


def _verified(data: bytes, plans: tuple[Plan, ...], language: str) -> tuple[str, int] | None:
    """Every planned edit made (what patch writes when nothing is left out) and parsed again."""
    edits = [e for p in plans for e in p.edits]
    if not edits:
        return None
    try:
        new = apply_edits(data, edits)
    except OverlappingEdits:
        return None
    return digest(new), error_count_edited(data, new, edits, language)


class Slim:
    """The product `check`, `baseline` and `patch` read of a file (`Product`): its outcome with only
    the plans of calls that involve a legacy table (or may: dynamic ones), pickled."""

    name = "slim:1"

    @staticmethod
    def of(outcome: FileOutcome) -> FileOutcome:
        plans = tuple(p for p in outcome.plans if p.verdict.status in (Status.LEGACY, Status.DYNAMIC))
        bare = dataclasses.replace(outcome.result, calls=()) if outcome.result.calls else outcome.result
        return FileOutcome(bare, (), plans, outcome.digest, outcome.verified)

    def __call__(self, outcome: FileOutcome, source: SourceFile | None = None) -> bytes:
        return Slim.pack(Slim.of(outcome))

    @staticmethod
    def pack(slim: FileOutcome) -> bytes:
        """A slim outcome as its product: `unslim` gives it back."""
        return dumps((slim.result, slim.plans, slim.digest, slim.verified))


def unslim(made: bytes) -> FileOutcome:
    bare, plans, data_digest, verified = pickle.loads(made)  # made by this run, or verified in the cache
    return FileOutcome(bare, (), plans, data_digest, verified)


def _imported(table: TableArg | None) -> bool:
    """A table named through another module: the link pass follows it there."""
    return table is not None and bool(table.link or table.candidate_links)


def _helper_parameter(table: TableArg | None) -> bool:
    """A table a helper is given: its callers, in other files, say which."""
    return table is not None and table.parameter is not None and not table.certain


def _shared_constant(table: TableArg | None) -> bool:
    """A table named by a module's constant that calls elsewhere name too: edited once, for all."""
    return table is not None and table.origin is not None


def _needs_link(outcome: FileOutcome) -> bool:
    return any(_imported(c.table) for c in outcome.result.calls)


def link_outcome(outcome: FileOutcome, source: SourceFile, rules: RuleSet | None, linker: Linker) -> FileOutcome:
    """Names imported from other modules, followed by the link pass; then the file's calls are
    judged again. Run every time, cached or not: the other modules may have changed."""
    from tableshift.link.apply import linked_table

    calls = tuple(
        dataclasses.replace(c, table=linked_table(c, linker, source.path)) if _imported(c.table) else c
        for c in outcome.result.calls
    )
    return _rejudge(outcome, source, rules, calls)


def _rejudge(outcome: FileOutcome, source: SourceFile, rules: RuleSet | None, calls: tuple[Call, ...]) -> FileOutcome:
    """A file's calls, changed by the link pass, classified and planned again."""
    result = dataclasses.replace(outcome.result, calls=calls)
    verdicts = tuple(classify(call, rules) for call in calls)
    if rules is None:
        return FileOutcome(result, verdicts, (), outcome.digest)
    try:
        data = read_bytes(source.path)
    except OSError:
        return outcome
    if outcome.digest and digest(data) != outcome.digest:
        return outcome  # changed under this run: its verdicts stand as scanned, and --apply refuses it
    plans = settle_shared(tuple(plan(v, rules, data) for v in verdicts))
    return FileOutcome(result, verdicts, plans, outcome.digest, outcome.verified)


def scan_file(source: SourceFile, rules: RuleSet | None, *, verify: bool = False, candidate: bool = False) -> FileOutcome:
    try:
        data = read_bytes(source.path)
    except OSError as exc:
        failed = FileResult(path=source.display, language=source.language, error=f"cannot read: {exc.strerror}")
        return FileOutcome(failed, (), (), "")
    return analyse(source, data, rules, verify=verify, candidate=candidate)


@dataclass(unsafe_hash=True, slots=True)
class Product:
    """What a command keeps of each file's outcome (the audit's counts and call JSON, the slim
    outcome `check` and `patch` read), made where the file is scanned, in a worker, and kept in the
    cache beside the outcome: a file whose outcome owes nothing to other files then never has its
    outcome sent back or loaded. `name` is what else the product depends on (its part of the key)."""

    name: str
    # of the file's final outcome; None when it cannot be made of it now (then the outcome comes
    # as it is, and no product is kept)
    make: Callable[[FileOutcome, SourceFile], bytes | None]
    # whether a worker also sends back the outcome of a file it made a product of (to be kept in
    # the cache); without a cache it is not pickled at all (a file found to need it is scanned again)
    outcomes: bool = True


def _independent(outcome: FileOutcome) -> bool:
    """Whether the link pass leaves this outcome as it is, whatever the other files say: no name
    imported from another module, no helper others call, no shared constant (a helper defined
    elsewhere may still be called here: that is known only once every file is read)."""
    return not any(
        _imported(c.table) or _helper_parameter(c.table) or _shared_constant(c.table) for c in outcome.result.calls
    )


def _scanned(source: SourceFile, rules: RuleSet | None, verify: bool, product: Product | None) -> tuple[bytes, bytes | None, str]:
    """A file scanned, as it is sent back: its outcome pickled (once: the same bytes cross the pipe
    and go into the cache), its product when the outcome owes nothing to other files, its digest."""
    outcome = scan_file(source, rules, verify=verify, candidate=True)  # only the first pass's candidates come here
    made = product.make(outcome, source) if product is not None and _independent(outcome) else None
    if made is None:
        return dumps(_to_cache(outcome)), None, outcome.digest
    return dumps(_to_cache(outcome)) if product.outcomes else b"", made, outcome.digest  # type: ignore[union-attr]


_WORKER_RULES: RuleSet | None = None
_WORKER_VERIFY = False
_WORKER_PRODUCT: Product | None = None


def _init_worker(rules: RuleSet | None, verify: bool = False, parent: int | None = None, product: Product | None = None) -> None:
    global _WORKER_RULES, _WORKER_VERIFY, _WORKER_PRODUCT
    _WORKER_RULES, _WORKER_VERIFY, _WORKER_PRODUCT = rules, verify, product
    if parent is not None:
        cores.die_with(parent)
    # Ctrl-C reaches the whole process group: the main process alone decides, and kills the
    # workers (SIGKILL) on its way out
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a worker the main process missed still ends
    if hasattr(signal, "pthread_sigmask"):  # forked with both held back (`_submit_held`)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


_HELD = {signal.SIGINT, signal.SIGTERM}


def _submit_held(pool, files: list[SourceFile]):  # type: ignore[no-untyped-def]
    """`pool.submit(_work, files)`, with SIGINT and SIGTERM held back: a pool's first `submit`
    forks its workers.

    Sent to the whole process group (Ctrl-C, `timeout`, a CI cancel) during a fork, they would
    reach a new worker before its initializer ignores them, killing it (the pool then broken,
    the run ending in an internal error), or reach this process inside an at-fork hook, which
    swallows the KeyboardInterrupt. Held back, a worker starts with them blocked until
    `_init_worker` has set how it takes them, and this process gets them right after the fork.
    """
    if not hasattr(signal, "pthread_sigmask"):
        return pool.submit(_work, files)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        return pool.submit(_work, files)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _work(batch: list[SourceFile]) -> list[tuple[bytes, bytes | None, str]]:
    return [_scanned(source, _WORKER_RULES, _WORKER_VERIFY, _WORKER_PRODUCT) for source in batch]


def _to_cache(outcome: FileOutcome) -> tuple:  # type: ignore[type-arg]
    # calls live inside the verdicts (and plans): store them once
    bare = dataclasses.replace(outcome.result, calls=())
    return (bare, outcome.plans if outcome.plans else outcome.verdicts, outcome.digest, outcome.verified)


def _from_cache(value: tuple, with_rules: bool) -> FileOutcome | None:  # type: ignore[type-arg]
    try:
        bare, items, data_digest, *rest = value
        verified = rest[0] if rest else None
        if not isinstance(bare, FileResult):
            return None
        if with_rules:
            plans = tuple(items)
            if not all(isinstance(p, Plan) for p in plans):
                return None
            verdicts = tuple(p.verdict for p in plans)
        else:
            plans, verdicts = (), tuple(items)
            if not all(isinstance(v, Verdict) for v in verdicts):
                return None
        result = dataclasses.replace(bare, calls=tuple(v.call for v in verdicts))
        return FileOutcome(result, verdicts, plans, data_digest, verified)
    except (TypeError, ValueError):
        return None


def run(
    sources: Iterable[SourceFile],
    rules: RuleSet | None,
    *,
    options: Options = Options(),
    on_file: Callable[[FileResult], None] | None = None,
) -> ScanResult:
    """Scan every file and classify every call with the same rules, so all commands agree."""
    sources = tuple(sources)
    return ScanResult(tuple(stream(sources, rules, options=options, on_file=on_file)), sources)


def stream(
    sources: Sequence[SourceFile],
    rules: RuleSet | None,
    *,
    options: Options = Options(),
    on_file: Callable[[FileResult], None] | None = None,
    settled: Settled | None = None,
    product: Product | None = None,
) -> Iterator[FileOutcome | bytes]:
    """Every file's outcome, in the order of `sources`, without holding them all.

    Per-file work (scanned, or from the cache) and names imported from other modules come
    first, spooled to disk in order; then helpers defined in one file and called from others
    are joined with their call sites, and the outcomes are replayed. `settled` learns, before
    the first outcome comes, which modules define the shared constants that will be edited.

    With a `product`, a file may come as its product (bytes, `product.make` of its final outcome)
    instead of its outcome: when a worker made it, or the cache holds it, and the link pass
    leaves the outcome as it is. The outcome is then neither sent back, nor loaded, nor kept.
    """
    if not sources:
        return

    @functools.cache
    def linker() -> Linker:
        """The link pass's, made when a file first needs it: its modules are not imported before
        the workers start, nor at all by a run with no name imported from another file."""
        from tableshift.discover import project_root
        from tableshift.link.linker import Linker

        return Linker(options.root or project_root(sources), options.max_file_size)

    cache = _open_cache(options, rules)
    products = _Products(cache, product if product is None or cache is not None else dataclasses.replace(product, outcomes=False))
    spool = _Spool(with_rules=rules is not None)
    helpers: dict[Helper, tuple[str, ...]] = {}
    shared = _Shared()
    keys: list[str] = []  # each file's cache key, where its outcome is the one kept under it
    kept: list[str] = []  # the keys of the files whose products are read back from the cache, in order
    per_file = _per_file(sources, rules, options, linker, cache, products)
    try:
        # closed once every file is in, not left to its finalizer (zip stops at the last source,
        # without asking it for more): the pool is shut down there, and an interrupt meanwhile
        # would be "ignored" in a finalizer, the run going on to write its report
        for source, (item, key, blob) in zip(sources, per_file):
            keys.append(key)
            if isinstance(item, _Made):
                if item.product is None:
                    kept.append(key)
                else:  # kept now, while the workers scan on: the product of that outcome, linked or not
                    products.put(key, item)
                if on_file is not None:
                    on_file(FileResult(path=source.display, language=source.language))
                spool.append_made(item)
                continue
            helpers.update(_helpers_of(source, item))
            shared.collect(item)
            if on_file is not None:
                on_file(item.result)
            spool.append(item, blob)
        per_file.close()
        sites: list[CallSite] = []
        if helpers:  # once every file is read, and only then: not before the workers start
            from tableshift.link import callsites

            sites = callsites.find(sources, helpers, linker())
        joined = _Sites(sites)
        shared.settle(sources, linker)
        if settled is not None:
            settled.modules = frozenset((edit.file, edit.path) for _, edit in shared.verdicts.values() if edit is not None)
        if cache is not None:
            cache.flush()  # outcomes put by this run can be read back
        products.reading(kept)
        for source, key, entry in zip(sources, keys, spool):
            if isinstance(entry, _Made):
                made = None if source.display in joined.by_file else products.get(key, entry)
                if made is not None:
                    yield made
                    continue
                entry, key = products.outcome(source, key, entry, rules, options)  # a helper defined elsewhere is called here
            outcome = entry
            touched = joined.touches(outcome, source)
            if touched:
                outcome = joined.apply(outcome, source, rules)
            final = shared.apply(outcome)
            made = products.keep(key, final, source) if not touched and final is entry and key and products.keeps(final) else None
            yield final if made is None else made
    finally:
        per_file.close()
        spool.close()
        if cache is not None:
            cache.prune()  # also flushes


def _open_cache(options: Options, rules: RuleSet | None):  # type: ignore[no-untyped-def]
    if options.cache_dir is None:
        return None
    from tableshift.cache import Cache

    cache = Cache(options.cache_dir, rules_key=rules.digest if rules is not None else "-")
    return cache if cache.enabled else None


@dataclass(slots=True)
class _Made:
    """A file that comes as its product: made by a worker just now (`product`), or kept in the
    cache (None). Its outcome is read back from the cache, or the file scanned again, if need be."""

    product: bytes | None = None


class _Products:
    """Products kept in the cache, each beside the outcome it was made of (its key: the outcome's
    key and the product's name), read a chunk at a time in file order."""

    def __init__(self, cache, product: Product | None) -> None:  # type: ignore[no-untyped-def]
        self.cache = cache
        self.product = product
        self.blobs: _Blobs | None = None

    def key(self, key: str) -> str:
        assert self.product is not None
        return hashlib.sha256(f"{key}\0product\0{self.product.name}".encode()).hexdigest()

    def kept(self, keys: list[str]) -> set[str]:
        """Which of these outcome keys have a product kept."""
        if self.cache is None or self.product is None or not keys:
            return set()
        by_product = {self.key(k): k for k in keys}
        return {by_product[k] for k in self.cache.existing(list(by_product))}

    def reading(self, keys: list[str]) -> None:
        if self.cache is not None and self.product is not None:
            self.blobs = _Blobs(self.cache, [self.key(k) for k in keys])

    def put(self, key: str, made: _Made) -> None:
        """Keep a product made just now beside its outcome (`key`: "" when the file changed while
        it was scanned, then not kept)."""
        if key and self.cache is not None and made.product is not None:
            self.cache.put(self.key(key), made.product)

    def get(self, key: str, made: _Made) -> bytes | None:
        """The product of a file that came as one: made just now (kept as it came), or read back."""
        if made.product is not None:
            return made.product
        if self.blobs is None or not key:
            return None
        self.cache.touch(key)  # the outcome stays as long as its product is used
        return self.blobs.get(self.key(key))

    def outcome(self, source: SourceFile, key: str, made: _Made, rules: RuleSet | None, options: Options) -> tuple[FileOutcome, str]:
        """The outcome of a file that came as its product, and its key: its blob, the cache's, else
        the file scanned again (then not the outcome kept under the key)."""
        blob = self.cache.get_blob(key) if self.cache is not None and key else None
        restored = _from_cache(_loads(blob), rules is not None) if blob is not None else None
        if restored is not None:
            return restored, key
        return scan_file(source, rules, verify=options.verify), ""

    def keeps(self, outcome: FileOutcome) -> bool:
        return self.product is not None and self.cache is not None and _independent(outcome)

    def keep(self, key: str, outcome: FileOutcome, source: SourceFile) -> bytes | None:
        """The product of an outcome at hand, kept for the next run (which then needs no outcome);
        None if it cannot be made now."""
        assert self.product is not None and self.cache is not None
        made = self.product.make(outcome, source)
        if made is not None:
            self.cache.put(self.key(key), made)
        return made


@dataclass(slots=True)
class Settled:
    """What the link pass settled across files, known before the first outcome is replayed."""

    # the modules whose shared constants are edited: (as reports show it, resolved path)
    modules: frozenset[tuple[str, str]] | None = None


class _Shared:
    """Constants of one module that name tables for calls in others: each is edited only when every
    use of it anywhere in the scanned files is a call moving to the same table (`link.constants`)."""

    def __init__(self) -> None:
        self.origins: dict[Key, Origin] = {}
        self.members: dict[Key, list[Member]] = {}
        self.verdicts: dict[Key, tuple[str | None, ConstantEdit | None]] = {}

    def collect(self, outcome: FileOutcome) -> None:
        for p in outcome.plans:
            table = p.call.table
            if table is None or table.origin is None or p.verdict.status is not Status.LEGACY:
                continue
            # the link pass's modules only for a constant to settle: not before the workers start
            from tableshift.link.constants import Member
            from tableshift.rewrite import pending

            key = table.origin.key
            self.origins[key] = table.origin
            ready = p.reasons == (pending(table.origin),)
            self.members.setdefault(key, []).append(Member(p.call.file, p.call.span, p.call.start.line, ready, p.verdict.target))

    def settle(self, sources: Sequence[SourceFile], linker: Callable[[], Linker]) -> None:
        if not self.origins:
            return
        from tableshift.link import constants
        from tableshift.rewrite import table_part

        found = constants.find(sources, self.origins.values(), linker())
        scanned = {str(s.path.resolve()) for s in sources}
        for key, origin in self.origins.items():
            members = self.members[key]
            why = constants.settle(origin, members, found.uses.get(key, []), scanned=origin.path in scanned and origin.path in found.digests)
            edit = None
            if why is None:
                edit = ConstantEdit(origin.file, origin.path, origin.span, table_part(members[0].target or ""), found.digests[origin.path])
            self.verdicts[key] = (why, edit)

    def apply(self, outcome: FileOutcome) -> FileOutcome:
        if not self.verdicts or not any(_shared_constant(p.call.table) for p in outcome.plans):
            return outcome
        from tableshift.rewrite import settle_origin

        plans = tuple(
            settle_origin(p, *self.verdicts[p.call.table.origin.key])  # type: ignore[union-attr]
            if _shared_constant(p.call.table) and p.call.table.origin.key in self.verdicts  # type: ignore[union-attr]
            else p
            for p in outcome.plans
        )
        return dataclasses.replace(outcome, plans=plans)


def _helpers_of(source: SourceFile, outcome: FileOutcome) -> Iterator[tuple[Helper, tuple[str, ...]]]:
    """Exported helpers defined in this file: a parameter reaches a query's table."""
    for call in outcome.result.calls:
        table = call.table
        if _helper_parameter(table):
            from tableshift.link.callsites import Helper  # the link pass's modules: only for a helper

            yield Helper(source.path.resolve(), *table.parameter), table.exported_as  # type: ignore[union-attr,misc]


class _Spool:
    """Outcomes in order, held until the link pass is done. The first ones stay in memory (most
    trees fit: no pickling); past a budget of calls they are pickled to a temporary file, so
    memory stays flat however large the tree. A file with nothing to say is its bare result."""

    MEMORY_CALLS = 6_000
    MEMORY_BYTES = 32 << 20  # of products (and outcomes that came with them) held

    def __init__(self, *, with_rules: bool) -> None:
        import tempfile

        self.file = tempfile.SpooledTemporaryFile(max_size=16 << 20)
        self.entries: list[FileResult | FileOutcome | _Made | None] = []  # None: the next pickle in the file
        self.held = 0  # calls held in memory
        self.held_bytes = 0
        self.with_rules = with_rules

    def append(self, outcome: FileOutcome, blob: bytes | None) -> None:
        """`blob`: the outcome already pickled (by a worker or in the cache), when it is unchanged."""
        result = outcome.result
        if not outcome.verdicts and result == FileResult(path=result.path, language=result.language):
            self.entries.append(result)
        elif self.held + len(outcome.verdicts) <= self.MEMORY_CALLS:
            self.held += len(outcome.verdicts)
            self.entries.append(outcome)
        else:
            self.entries.append(None)
            if blob is None:
                pickle.dump(_to_cache(outcome), self.file, protocol=pickle.HIGHEST_PROTOCOL)
            else:
                self.file.write(blob)

    def append_made(self, made: _Made) -> None:
        size = len(made.product or b"")
        if self.held_bytes + size <= self.MEMORY_BYTES:
            self.held_bytes += size
            self.entries.append(made)
        else:
            self.entries.append(None)
            pickle.dump(made, self.file, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[FileOutcome | _Made]:
        self.file.seek(0)
        for index, entry in enumerate(self.entries):
            self.entries[index] = None  # let it go once yielded
            if isinstance(entry, FileResult):
                yield FileOutcome(entry, (), (), "")
            elif entry is not None:
                yield entry
            else:
                stored = pickle.load(self.file)
                if isinstance(stored, _Made):
                    yield stored
                    continue
                restored = _from_cache(stored, self.with_rules)
                assert restored is not None  # written by this run
                yield restored

    def close(self) -> None:
        self.file.close()


class _Sites:
    """Helper call sites, by the helper they call and by the file they stand in."""

    def __init__(self, sites: list[CallSite]) -> None:
        self.by_helper: dict[Helper, list[CallSite]] = {}
        self.by_file: dict[str, list[CallSite]] = {}
        for site in sites:
            self.by_helper.setdefault(site.helper, []).append(site)
            self.by_file.setdefault(site.file, []).append(site)

    def touches(self, outcome: FileOutcome, source: SourceFile) -> bool:
        if source.display in self.by_file:
            return True
        return bool(self.by_helper) and any(h in self.by_helper for h, _ in _helpers_of(source, outcome))

    def apply(self, outcome: FileOutcome, source: SourceFile, rules: RuleSet | None) -> FileOutcome:
        from tableshift.link.apply import site_call, with_callers
        from tableshift.link.callsites import Helper

        module = source.path.resolve()
        calls = [
            dataclasses.replace(c, table=with_callers(c.table, self.by_helper.get(Helper(module, *c.table.parameter), [])))  # type: ignore[union-attr,misc]
            if _helper_parameter(c.table)
            else c
            for c in outcome.result.calls
        ]
        own = self.by_file.get(source.display, [])
        if own:
            try:
                data = read_bytes(source.path)
            except OSError:
                data = b""
            calls.extend(site_call(site, data, source.language) for site in own)
            calls.sort(key=lambda c: c.span.start)
        return _rejudge(outcome, source, rules, tuple(calls))


def _per_file(
    sources: Sequence[SourceFile], rules: RuleSet | None, options: Options, linker: Callable[[], Linker], cache, products: _Products  # type: ignore[no-untyped-def]
) -> Iterator[tuple[FileOutcome | _Made, str, bytes | None]]:
    """Each file in order: its outcome (trivial, from the cache, or scanned; imports linked), or
    its product (`_Made`); with the cache key its outcome is kept under ("" when the outcome is not
    that one: linked, or changed while scanned), and its pickled outcome when unchanged.

    A first pass reads each file once to prefilter and hash it; files that may hold calls and
    are not cached go to a process pool in batches.
    """
    trivial: dict[int, FileResult] = {}
    keys: dict[int, str] = {}  # candidate files: index -> cache key
    digests: dict[int, str] = {}
    known = _StatIndex(cache, options)
    # the pool starts on the first batch of files to scan, while this pass still reads the rest
    work = _Work(rules, options.jobs, hint=len(sources), verify=options.verify, product=products.product)
    try:
        cached = _first_pass(sources, known, cache, work, trivial, keys, digests)
    except BaseException:
        work.abort()  # interrupted while reading: the workers already started go at once
        raise
    finally:
        from tableshift import early

        early.stop()  # its reading is used up (or not usable): it is reaped, if it has not ended
    LAST_RUN.clear()
    LAST_RUN.update(
        candidates=len(keys),
        cached=sum(1 for k in keys.values() if k in cached),
        parsed=len(keys) - sum(1 for k in keys.values() if k in cached),
        skipped=sum(1 for r in trivial.values() if r.skipped),
    )
    computed = work.results()
    try:
        in_cache = [keys[i] for i in sorted(keys) if keys[i] in cached]
        made = products.kept(in_cache)  # their products are kept: their outcomes are not loaded
        blobs = _Blobs(cache, [k for k in in_cache if k not in made]) if cache is not None else None
        for index, source in enumerate(sources):
            blob: bytes | None = None
            key = ""
            if index in trivial:
                outcome = FileOutcome(trivial.pop(index), (), (), "")
            elif keys[index] in made:
                yield _Made(), keys[index], None
                continue
            elif keys[index] in cached:
                assert cache is not None and blobs is not None
                blob = blobs.get(keys[index])
                restored = _from_cache(_loads(blob), rules is not None) if blob is not None else None
                if restored is None or restored.digest != digests[index]:
                    blob = dumps(_to_cache(scan_file(source, rules)))
                    restored = _from_cache(pickle.loads(blob), rules is not None)
                    cache.put(keys[index], blob)
                outcome, key = restored, keys[index]  # type: ignore[assignment]
            else:
                computed_index, (blob, product, scanned_digest) = next(computed)
                assert computed_index == index
                unchanged = scanned_digest == digests[index]  # else the file changed between the two reads
                if cache is not None and unchanged and blob:
                    cache.put(keys[index], blob)
                if product is not None:
                    yield _Made(product), keys[index] if unchanged else "", None
                    continue
                outcome = _from_cache(pickle.loads(blob), rules is not None)  # type: ignore[assignment]
                key = keys[index] if unchanged else ""
            if _needs_link(outcome):
                outcome, blob, key = link_outcome(outcome, source, rules, linker()), None, ""
            yield outcome, key, blob
    finally:
        computed.close()  # at once, here: see `stream`


class _Blobs:
    """Cache entries read in the order the files come, a few dozen per query (one query per file
    was a tenth of a warm run's loop); only a chunk is held at a time."""

    CHUNK = 64

    def __init__(self, cache, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
        self.cache = cache
        self.keys = keys
        self.next = 0
        self.held: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        if key not in self.held:
            if self.next < len(self.keys) and self.keys[self.next] == key:
                chunk = self.keys[self.next : self.next + self.CHUNK]
                self.next += len(chunk)
                self.held = self.cache.get_many(chunk, raw=True)
                return self.held.pop(key, None)
            return self.cache.get_blob(key)  # out of order: read alone
        return self.held.pop(key)


class _StatIndex:
    """What the first pass finds in a file (no candidate, skipped, or the digest of one to scan),
    remembered by its stat as git's index does: an unchanged file is not read again. An entry is
    trusted only when size, mtime, ctime and inode match and the file was not changed within
    `RACY_NS` of the entry being written (a same-tick edit could hide behind an equal mtime)."""

    RACY_NS = memo.RACY_NS

    def __init__(self, cache, options: Options) -> None:  # type: ignore[no-untyped-def]
        from tableshift import __version__
        from tableshift.cache import code_fingerprint

        self.cache = cache
        self.options = options
        self.entries = cache.stats() if cache is not None else {}
        # what an entry was found under (no cache, nothing to find or keep: tableshift's own
        # source is not hashed for nothing before the first file is read)
        self.salt = f"{__version__}:{code_fingerprint()}:{options.max_file_size}:{int(options.skip_minified)}|" if cache is not None else ""
        self.now = time.time_ns()
        from tableshift import early

        if self.entries:  # a cache that knows the files reads few of them: none waits for the early reading
            early.stop()
            self.early = None
        else:  # the files as the process forked at the start read them
            self.early = early.reader(options)

    def verdict(self, source: SourceFile) -> str:
        found = self.early(source.display) if self.early is not None else None
        if found is not None and self.cache is None:
            return found[1]
        try:
            info = os.stat(source.path)
        except OSError as exc:
            return f"error:cannot read: {exc.strerror}"
        key = os.fsencode(source.path)
        stamp = memo.stamp_of(info)
        entry = self.entries.get(key)
        if entry is not None and entry[0] == stamp and entry[1].startswith(self.salt):
            if max(info.st_mtime_ns, info.st_ctime_ns) + self.RACY_NS < entry[2]:
                return entry[1][len(self.salt) :]
        # what the early process read, if the file is still what it was then (and it was hashed)
        if found is not None and found[0] == stamp and found[1] != "digest:":
            verdict = found[1]
        else:
            verdict = read_verdict(source, info, self.options, digested=self.cache is not None)
        if self.cache is not None:
            self.cache.put_stat(key, stamp, self.salt + verdict, self.now)
        return verdict


def _loads(blob: bytes) -> tuple | None:  # type: ignore[type-arg]
    try:
        return pickle.loads(blob)  # verified by its signature: written by tableshift itself
    except Exception:  # an entry of an older layout: recompute it
        return None


LAST_RUN: dict[str, int] = {}  # what the last scan did, for `-v`


def _first_pass(sources, known, cache, work, trivial, keys, digests) -> set[str]:  # type: ignore[no-untyped-def]
    """Each file read once (or known by its stat): trivial, cached, or scheduled to be scanned."""
    cached: set[str] = set()
    waiting: list[int] = []  # candidates whose cache entry is not looked up yet
    for index, source in enumerate(sources):
        verdict = known.verdict(source)
        if verdict.startswith("error:"):
            trivial[index] = FileResult(path=source.display, language=source.language, error=verdict[len("error:") :])
        elif verdict.startswith("skip:"):
            candidates, _, reason = verdict[len("skip:") :].partition(":")
            trivial[index] = FileResult(path=source.display, language=source.language, skipped=reason, candidates=candidates == "1")
        elif verdict == "none":
            trivial[index] = FileResult(path=source.display, language=source.language)
        elif verdict == "generated":  # `supabase gen types` output with nothing else in it: never parsed
            trivial[index] = FileResult(path=source.display, language=source.language, generated_types=True)
        else:
            digests[index] = verdict[len("digest:") :]
            keys[index] = cache.key(source.display, digests[index]) if cache is not None else ""
            waiting.append(index)
            if len(waiting) >= work.size:
                cached |= _schedule(waiting, keys, cache, work, sources)
    cached |= _schedule(waiting, keys, cache, work, sources)
    return cached


def _schedule(waiting: list[int], keys: dict[int, str], cache, work: _Work, sources: Sequence[SourceFile]) -> set[str]:  # type: ignore[no-untyped-def]
    """Look the waiting candidates up in the cache; the others go to work. Empties `waiting`."""
    found = cache.existing([keys[i] for i in waiting]) if cache is not None and waiting else set()
    for i in waiting:
        if keys[i] not in found:
            work.add(i, sources[i])
    waiting.clear()
    return found


def usable_cores() -> int:
    """`cores.usable` (this module's name, which tests replace)."""
    return cores.usable(_cgroup_quota())


def _cgroup_quota() -> float | None:
    return cores.cgroup_quota()


class _Work:
    """Files to scan, in order: in this process for a few, else in batches through a process pool
    that starts as soon as there is enough to do (the first pass goes on reading meanwhile)."""

    def __init__(self, rules: RuleSet | None, jobs: int, *, hint: int, verify: bool = False, product: Product | None = None) -> None:
        cores = usable_cores()
        # never more than a few processes per core: each costs a fork
        self.workers = max(1, min(jobs if jobs > 0 else cores, MAX_WORKERS_PER_CORE * cores))
        self.rules = rules
        self.verify = verify
        self.product = product
        # small batches early keep every worker busy; large ones cost less to send
        self.size = max(4, min(BATCH_MAX, hint // (self.workers * 8) or 1))
        self.hint = hint
        self.added = 0
        self.todo: list[tuple[int, SourceFile]] = []
        self.batches: list[tuple[list[int], list[SourceFile]]] = []
        self.pool = None
        self.futures: list = []  # type: ignore[type-arg]

    def add(self, index: int, source: SourceFile) -> None:
        """Schedule the file at `index` of the run's sources (added in order)."""
        self.todo.append((index, source))
        self.added += 1
        if self.workers > 1 and (self.pool is not None or len(self.todo) >= PARALLEL_MIN_FILES):
            # the pool starts with a batch for each worker: the first pass may read hundreds of
            # files before it has another batch's worth (capgo's second worker waited 20 ms)
            size = self._size(index) if self.pool is not None else -(-len(self.todo) // self.workers)
            while len(self.todo) >= size:
                self._submit(self.todo[:size])
                del self.todo[:size]

    def _size(self, index: int) -> int:
        """The next batch's size, shrinking to one file as the sources run out (guided
        self-scheduling): the workers take batches in order, and the last ones, small, end
        together. Batches of 8 to the end left one of capgo's two workers alone for 17-45 ms
        (its last files are its largest tests). What is left to scan is guessed from the share
        of the files read so far that were added."""
        left = (self.hint - index - 1) * self.added / (index + 1)
        return max(1, min(self.size, int(left / (2 * self.workers))))

    def _submit(self, chunk: list[tuple[int, SourceFile]]) -> None:
        batch = ([i for i, _ in chunk], [s for _, s in chunk])
        self.batches.append(batch)
        if self.pool is None:
            self.pool = _pool(self.rules, self.workers, self.verify, self.product)
        self.futures.append(_submit_held(self.pool, batch[1]))

    def results(self) -> Iterator[tuple[int, tuple[bytes, bytes | None, str]]]:
        if self.pool is None:  # little to do: not worth a process
            for index, source in self.todo:
                yield index, _scanned(source, self.rules, self.verify, self.product)
            return
        if self.todo:
            self._submit(self.todo)
            self.todo = []
        yield from _pooled(self.batches, self.rules, self.workers, pool=self.pool, futures=self.futures, verify=self.verify, product=self.product)

    def abort(self) -> None:
        if self.pool is not None:
            _kill(self.pool)
            self.pool.shutdown(wait=False)
            self.pool = None


_PREPARING: list[threading.Thread] = []  # the thread `prepare_pool` started, until it is joined


def prepare_pool(jobs: int = 0) -> None:
    """Import the process pool's modules and load the grammars in a thread, while the caller waits
    on `git ls-files`: they took 10 to 15 ms just before the workers could start, with the other
    core idle. Joined before any worker is forked (a fork must not copy a half-done import)."""
    if _PREPARING or jobs == 1 or usable_cores() < 2 or "concurrent.futures.process" in sys.modules:
        return
    import threading

    thread = threading.Thread(target=_prepare, name="tableshift-prepare", daemon=True)
    _PREPARING.append(thread)
    thread.start()


def _prepare() -> None:
    try:
        import concurrent.futures.process  # noqa: F401
        import multiprocessing  # noqa: F401

        _load_grammars()
    except BaseException:  # noqa: BLE001  (the same import in the run itself says what is wrong, in one line)
        pass


def _load_grammars() -> None:
    """The scanner's module and its grammars, loaded (each is kept once loaded)."""
    from tableshift.scan import typescript

    for language in ("typescript", "tsx", "javascript"):
        typescript.grammar(language)


def _prepared() -> None:
    """Wait for `prepare_pool`'s thread, if one was started."""
    while _PREPARING:
        _PREPARING.pop().join()


def _pool(rules: RuleSet | None, workers: int, verify: bool = False, product: Product | None = None):  # type: ignore[no-untyped-def]
    _prepared()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    if context.get_start_method() == "fork":
        _load_grammars()  # once here, not once per worker: forked workers share the modules and grammars
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(rules, verify, os.getpid(), product))


def _pooled(
    batches: list[tuple[list[int], list[SourceFile]]],
    rules: RuleSet | None,
    workers: int,
    *,
    pool=None,  # type: ignore[no-untyped-def]
    futures=None,  # type: ignore[no-untyped-def]
    verify: bool = False,
    product: Product | None = None,
) -> Iterator[tuple[int, tuple[bytes, bytes | None, str]]]:
    """Batches through a process pool, in order (a pool already given the batches may be passed).
    A worker that dies (a parser's native crash) costs only its own file: that batch is retried one
    file per process, and a new pool takes the rest. Interrupted, the workers are killed at once
    rather than left to finish."""
    from concurrent.futures.process import BrokenProcessPool

    remaining = batches
    while remaining:
        if pool is None or futures is None:
            pool = _pool(rules, min(workers, len(remaining)), verify, product)
            futures = [_submit_held(pool, files) for _, files in remaining]
        broken = False
        try:
            for k, (indices, files) in enumerate(remaining):
                try:
                    results = futures[k].result()
                except BrokenProcessPool:
                    results, broken = [_isolated(source, rules, verify, product) for source in files], True
                futures[k] = None  # type: ignore[call-overload]  # memory stays flat: results are not kept
                yield from zip(indices, results)
                if broken:  # every later batch of this pool is lost too: a new pool takes them
                    remaining = remaining[k + 1 :]
                    break
            else:
                remaining = []
        except BaseException:
            broken = True  # interrupted (Ctrl-C, SIGTERM, a consumer that stopped)
            raise
        finally:
            if broken:
                # kill the workers and leave at once: waiting on a pool whose workers were killed
                # can block for ever on its queues; its manager thread fails what was pending
                _kill(pool)
                pool.shutdown(wait=False)
            else:
                pool.shutdown(wait=True)
            pool = futures = None


def _isolated(source: SourceFile, rules: RuleSet | None, verify: bool = False, product: Product | None = None) -> tuple[bytes, bytes | None, str]:
    """One file in a process of its own: if it dies again, the file is reported, never the run."""
    from concurrent.futures.process import BrokenProcessPool

    with _pool(rules, 1, verify, product) as pool:
        try:
            return _submit_held(pool, [source]).result()[0]
        except BrokenProcessPool:
            failed = FileResult(path=source.display, language=source.language, error="the parser crashed on this file")
            return dumps(_to_cache(FileOutcome(failed, (), (), ""))), None, ""


def _kill(pool) -> None:  # type: ignore[no-untyped-def]
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):
            pass


@dataclass(unsafe_hash=True, slots=True)
class Rewrite:
    """One file's rewrite: the new bytes, or why the file was refused."""

    path: str
    source: Path
    old: bytes
    new: bytes
    plans: tuple[Plan, ...]
    refused: str | None = None
    diff: bytes | None = None  # the file's unified diff, once its bytes are let go (patch without --apply)
    # refused for what the file held when it was read again (unreadable, changed since its scan),
    # not for the bytes scanned: a refusal that another run of the same bytes must not inherit
    stale: bool = False

    @property
    def changed(self) -> bool:
        """Written (or to be written): not refused, and not the same bytes."""
        if self.refused is not None:
            return False
        return bool(self.diff) if self.diff is not None else self.new != self.old


def rewrite_file(
    source: SourceFile,
    outcome: FileOutcome,
    chosen: Sequence[Plan],
    constants: Sequence[ConstantEdit] = (),
    served: Sequence[Plan] = (),
    *,
    errors: Callable[[bytes, str], int] | None = None,
) -> Rewrite:
    """Apply the chosen plans' edits, and the edits of the shared constants this module defines
    (which `served` calls elsewhere rely on); refuse the file if it changed or would parse worse."""
    path = source.display
    plans = (*chosen, *served)
    try:
        old = read_bytes(source.path)
    except OSError as exc:
        return Rewrite(path, source.path, b"", b"", plans, f"cannot read: {exc.strerror}", stale=True)
    expected = {outcome.digest} if outcome.digest else set()
    expected |= {c.digest for c in constants}
    if expected != {digest(old)}:
        return Rewrite(path, source.path, old, old, plans, "file changed since it was scanned", stale=True)
    try:
        new = apply_edits(old, [*(e for p in chosen for e in p.edits), *(c.edit for c in constants)])
    except OverlappingEdits as exc:
        return Rewrite(path, source.path, old, old, plans, f"edits overlap: {exc}")
    # the scan already knows whether the original parsed cleanly: parse it again only if not
    before = error_count(old, source.language) if outcome.result.parse_error else 0
    if outcome.verified is not None and outcome.verified[0] == digest(new):
        after = outcome.verified[1]  # parsed already, where the file was scanned
    else:
        after = (errors or error_count)(new, source.language)
    if after > before:
        return Rewrite(path, source.path, old, old, plans, "the rewritten file would not parse as well as the original")
    return Rewrite(path, source.path, old, new, plans)
