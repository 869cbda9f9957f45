"""Time tableshift against ast-grep on real checkouts and on generated trees: cold, warm, one file
edited, check and patch (cold and warm), start-up and peak memory. Every number is the median of
paired runs (ast-grep and tableshift back to back, so machine noise hits both); each row is
printed as soon as it is measured.

    python bench/run.py --tree ~/src/midday            # a real checkout (see bench/codebases.toml)
    python bench/run.py --tree A --tree B --runs 7     # several
    python bench/run.py --sizes 1 4 16                 # generated trees of 2,000 x N files, removed after
    python bench/run.py --sizes 16 --keep              # ... kept under --work

ast-grep is given the same job: every `$A.from($T)` in each language of the tree it can parse
(TypeScript, TSX, JavaScript), one `ast-grep scan` over inline rules, on all cores. It comes with
`pip install -e '.[bench]'`; this script finds it (and tableshift) beside the Python running it,
so the venv need not be on PATH. Never part of CI: timings belong to a machine, not to a test.

What makes two machines disagree is printed with the figures, so a row can be checked:
- the cores each tool was given and really used: the process's CPU affinity and cgroup CPU quota
  (what both tools size their pools by), and for each tool its CPU time over its wall time;
- the files each tool read (ast-grep's own count, and what tableshift parsed);
- the spread of the paired ratios (median, and lowest-highest), each pair run in alternating
  order (ab, ba, ...), after one untimed run of each so the page cache holds the tree for both;
- the machine: CPU model, load average before the row, and the cgroup's throttling counters
  (a quota the tools exceed is throttled: a row measured under throttling is marked).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

RULES = ROOT / "rules" / "content-consolidation.toml"
# ast-grep's languages and the extensions it gives them; tableshift also reads components
SG_LANGUAGES = {"TypeScript": (".ts", ".mts", ".cts"), "Tsx": (".tsx",), "JavaScript": (".js", ".jsx", ".mjs", ".cjs")}
SKIP_DIRS = {".git", "node_modules", "dist", "build", ".next", "coverage", "vendor"}


def _tool(name: str) -> list[str]:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found is not None:
        return [found]
    if name == "tableshift":
        return [sys.executable, "-m", "tableshift"]
    sys.exit(f"bench: {name} not found: pip install -e '.[bench]'")


# as installed: Python's bytecode cache is used (an environment that turns it off would time the
# compiling of tableshift's own modules on every run, which no installed copy does)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


CPU: dict[str, list[tuple[float, float]]] = {}  # tool -> (wall, CPU seconds) of each timed run


def _run(cmd: list[str], cwd: Path, tool: str = "") -> float:
    """Wall seconds (exit 0 or 1 accepted: check fails on new usage by design). The CPU time of
    the run and of every process it waited for (tableshift's workers) is kept under `tool`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    if tool:
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        CPU.setdefault(tool, []).append((wall, cpu))
    return wall


def cores_used(tool: str) -> float:
    """Median CPU seconds per wall second of a tool's timed runs: the cores it really used."""
    runs = CPU.get(tool, [])
    return statistics.median(cpu / wall for wall, cpu in runs) if runs else 0.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def machine() -> str:
    """What a row's machine gives the tools: cores, affinity, cgroup quota, CPU model."""
    from tableshift.engine import _cgroup_quota, usable_cores

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    quota = _cgroup_quota()
    model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines() if line.startswith("model name")), platform.processor())
    return (
        f"{os.cpu_count()} cores seen, affinity {affinity}, cgroup quota {f'{quota:g} CPUs' if quota else 'none'},"
        f" tableshift's workers {usable_cores()}; {model or platform.machine()}"
    )


def throttling() -> tuple[int, int]:
    """The cgroup's CPU throttling counters (periods throttled, microseconds): cgroup v2 cpu.stat."""
    stats = dict(line.split() for line in _read("/sys/fs/cgroup/cpu.stat").splitlines() if len(line.split()) == 2)
    return int(stats.get("nr_throttled", 0)), int(stats.get("throttled_usec", 0))


def files_read(tableshift: list[str], astgrep: list[str], sg: list[str], tree: Path) -> tuple[int, int]:
    """Files ast-grep scanned (its own count) and files tableshift parsed (its -v line)."""
    head = len(astgrep) + 1  # `ast-grep scan`, then its rules and path: the option goes between
    proc = subprocess.run([*sg[:head], "--inspect", "summary", *sg[head:]], cwd=tree, capture_output=True, text=True, env=ENV)
    found = re.search(r"scannedFileCount=(\d+)", proc.stderr)
    ts = subprocess.run([*tableshift, "audit", ".", "--rules", str(RULES), "--no-cache", "-v", "--format", "json", "--output", os.devnull], cwd=tree, capture_output=True, text=True, env=ENV)
    parsed = re.search(r"(\d+) parsed", ts.stderr)
    return (int(found.group(1)) if found else 0), (int(parsed.group(1)) if parsed else 0)


def peak_rss(cmd: list[str], cwd: Path) -> float:
    """Peak RSS in MiB of one run: GNU time's %M, the largest resident set of the main process or of
    any one pool worker."""
    gnu_time = "/usr/bin/time"
    if not Path(gnu_time).exists():
        return 0.0
    proc = subprocess.run([gnu_time, "-f", "%M", *cmd], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        return int(proc.stderr.decode().strip().splitlines()[-1]) / 1024
    except (ValueError, IndexError):
        return 0.0


def inventory(tree: Path) -> dict[str, int]:
    """Files per extension, bytes, and files that mention `.from(` (what the prefilter keeps)."""
    counts: dict[str, int] = {}
    size = with_from = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".tableshift")]
        for name in filenames:
            ext = os.path.splitext(name)[1]
            if ext not in (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".vue", ".svelte", ".astro", ".py"):
                continue
            counts[ext] = counts.get(ext, 0) + 1
            data = Path(dirpath, name).read_bytes()
            size += len(data)
            with_from += b".from(" in data or b".table(" in data
    return {**counts, "bytes": size, "with_from": with_from}


def edit_victim(tree: Path) -> Path | None:
    """The file "1 edit" changes: the first (by path) that tableshift must parse again, one holding
    a `.from(` that its prefilter keeps (a file whose only `.from(` is `Buffer.from` is not read
    again, and would time a run that parses nothing)."""
    from tableshift.discover import language_of
    from tableshift.scan import has_candidates

    for path in sorted(tree.rglob("*")):
        if path.suffix not in (".ts", ".tsx", ".js", ".vue", ".svelte") or SKIP_DIRS.intersection(path.relative_to(tree).parts) or not path.is_file():
            continue
        data = path.read_bytes()
        if b".from(" in data and has_candidates(data, language_of(path) or ""):
            return path
    return None


def astgrep_command(astgrep: list[str], files: dict[str, int]) -> list[str]:
    rules = [
        f"id: from-{lang.lower()}\nlanguage: {lang}\nrule: {{pattern: $A.from($T)}}"
        for lang, exts in SG_LANGUAGES.items()
        if any(files.get(ext) for ext in exts)
    ]
    return [*astgrep, "scan", "--inline-rules", "\n---\n".join(rules or [next(iter(SG_LANGUAGES))]), "."]


SPREAD: dict[str, tuple[float, float, float]] = {}  # ratio name -> (median, lowest, highest)


def paired(runs: int, first: Callable[[], float], second: Callable[[], float], name: str = "") -> tuple[float, float]:
    """Medians of `runs` pairs, run in alternating order (ab, ba, ...) so neither tool always
    comes second to a cache or a clock the other warmed. The pairs' ratios second/first are kept
    under `name`."""
    a, b = [], []
    for i in range(runs):
        if i % 2:
            b.append(second())
            a.append(first())
        else:
            a.append(first())
            b.append(second())
    if name:
        ratios = [y / x for x, y in zip(a, b)]
        SPREAD[name] = (statistics.median(ratios), min(ratios), max(ratios))
    return statistics.median(a), statistics.median(b)


def measure(tree: Path, runs: int, tableshift: list[str], astgrep: list[str]) -> dict[str, float]:
    files = inventory(tree)
    work = Path(tempfile.mkdtemp(prefix="tableshift-bench-"))
    cache = work / "cache"
    common = ["--rules", str(RULES), "--cache-dir", str(cache)]
    audit = [*tableshift, "audit", ".", *common, "--format", "json", "--output", os.devnull]
    cold_audit = [*tableshift, "audit", ".", "--rules", str(RULES), "--no-cache", "--format", "json", "--output", os.devnull]
    sg = astgrep_command(astgrep, files)
    victim = edit_victim(tree)
    original = victim.read_bytes() if victim is not None else b""
    out: dict[str, float] = {"files": sum(v for k, v in files.items() if k.startswith(".")), "MB": files["bytes"] / 1e6}
    out["with .from("] = files["with_from"]
    # tableshift lists a git work tree's files with `git ls-files`, and walks any other folder
    # reading its .gitignore files (slower): a copy without its .git is not the same measurement
    inside = shutil.which("git") is not None and subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True
    ).stdout.strip() == "true"
    out["git"] = float(inside)

    def cold() -> float:
        return _run(cold_audit, tree, "tableshift cold")

    def warm() -> float:
        return _run(audit, tree)

    def edited() -> float:
        if victim is None:
            return warm()
        victim.write_bytes(original + f"\n// edit {time.monotonic_ns()}\n".encode())
        return _run(audit, tree)

    def astgrep_run() -> float:
        return _run(sg, tree, "ast-grep")

    out["sg files"], out["ts parsed"] = files_read(tableshift, astgrep, sg, tree)  # also fills the page cache for both
    CPU.clear()
    throttled = throttling()
    try:
        out["ast-grep"], out["cold"] = paired(runs, astgrep_run, cold, "cold/sg")
        _run(audit, tree)  # fill the cache
        sg_again, out["warm"] = paired(runs, astgrep_run, warm, "warm/sg")
        out["ast-grep"] = statistics.median([out["ast-grep"], sg_again])
        # each edit paired with an ast-grep run too: its ratio is then one of the same moment
        _, out["1 edit"] = paired(runs, astgrep_run, edited, "edit/sg")
    finally:
        if victim is not None:
            victim.write_bytes(original)
    baseline = work / "baseline.json"
    subprocess.run([*tableshift, "baseline", ".", "--rules", str(RULES), "--no-cache", "--output", str(baseline)], cwd=tree, capture_output=True, env=ENV)
    check = [*tableshift, "check", ".", "--baseline", str(baseline), "--format", "json"]
    patch = [*tableshift, "patch", ".", "--output", os.devnull]
    # each against the audit in the same state of the cache, paired
    out["audit (cold)"], out["check (cold)"] = paired(runs, cold, lambda: _run([*check, "--rules", str(RULES), "--no-cache"], tree))
    out["audit (cold) for patch"], out["patch (cold)"] = paired(runs, cold, lambda: _run([*patch, "--rules", str(RULES), "--no-cache"], tree))
    _run(audit, tree)
    _run([*patch, *common], tree)  # the patch's own cache entries (each rewrite's parse)
    out["audit (warm)"], out["check (warm)"] = paired(runs, warm, lambda: _run([*check, *common], tree))
    out["audit (warm) for patch"], out["patch (warm)"] = paired(runs, warm, lambda: _run([*patch, *common], tree))
    out["peak MiB"] = peak_rss(cold_audit, tree)
    out["sg cores"], out["ts cores"] = cores_used("ast-grep"), cores_used("tableshift cold")
    after = throttling()
    out["throttled"] = after[0] - throttled[0]
    out["throttled s"] = (after[1] - throttled[1]) / 1e6
    shutil.rmtree(work, ignore_errors=True)
    return out


def startup(tableshift: list[str], runs: int) -> tuple[float, float]:
    empty = Path(tempfile.mkdtemp(prefix="tableshift-empty-"))
    try:
        version = statistics.median([_run([*tableshift, "--version"], empty) for _ in range(runs)])
        audit = statistics.median([_run([*tableshift, "audit", ".", "--no-cache"], empty) for _ in range(runs)])
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    return version, audit


HEADER = (
    f"{'tree':<20} {'files':>6} {'MB':>5} {'.from(':>6} {'ast-grep':>8} {'cold':>6} {'warm':>6} {'1 edit':>6}"
    f" {'cold/sg':>7} {'warm/sg':>7} {'edit/sg':>7} {'check/a':>7} {'patch/a':>7} {'peak MiB':>8}"
)
DETAIL = "  spread of the pairs (median lowest-highest), files each tool read, cores each tool used"


def row(label: str, r: dict[str, float]) -> str:
    """The figures (each ratio the median of paired ratios), then a line saying how far to trust them."""
    sg = r["ast-grep"]
    check = max(r["check (cold)"] / r["audit (cold)"], r["check (warm)"] / r["audit (warm)"])
    patch = max(r["patch (cold)"] / r["audit (cold) for patch"], r["patch (warm)"] / r["audit (warm) for patch"])
    ratio = {name: SPREAD[name][0] for name in ("cold/sg", "warm/sg", "edit/sg")}
    line = (
        f"{label[:20]:<20} {r['files']:>6.0f} {r['MB']:>5.1f} {r['with .from(']:>6.0f} {sg:>7.2f}s {r['cold']:>5.2f}s {r['warm']:>5.2f}s"
        f" {r['1 edit']:>5.2f}s {ratio['cold/sg']:>7.2f} {ratio['warm/sg']:>7.2f} {ratio['edit/sg']:>7.2f} {check:>7.2f} {patch:>7.2f}"
        f" {r['peak MiB']:>8.0f}"
    )
    spread = ", ".join(f"{name} {m:.2f} ({lo:.2f}-{hi:.2f})" for name, (m, lo, hi) in SPREAD.items() if name in ratio)
    detail = (
        f"  {spread}; ast-grep read {r['sg files']:.0f} files, tableshift parsed {r['ts parsed']:.0f};"
        f" cores used cold: ast-grep {r['sg cores']:.2f}, tableshift {r['ts cores']:.2f}"
    )
    if not r["git"]:
        detail += "; not a git work tree: tableshift walked it, reading its .gitignore files"
    if r["throttled"]:
        detail += f"; THROTTLED {r['throttled']:.0f} times ({r['throttled s']:.1f} s) by the cgroup's CPU quota: not comparable"
    return f"{line}\n{detail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", "--path", dest="trees", type=Path, action="append", default=[], help="a checkout to measure (repeatable)")
    parser.add_argument("--sizes", "--scales", dest="sizes", type=int, nargs="*", default=None, help="generated trees of --files x N (default: 1 4 16 when no --tree)")
    parser.add_argument("--files", type=int, default=2000, help="files in the 1x generated tree")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="where generated trees go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep generated trees")
    args = parser.parse_args()
    sizes = args.sizes if args.sizes is not None else ([] if args.trees else [1, 4, 16])
    for tree in args.trees:
        if not tree.is_dir():
            sys.exit(f"bench: {tree}: not a directory")

    tableshift = _tool("tableshift")
    astgrep = _tool("ast-grep")
    versions = subprocess.run([*tableshift, "--version"], capture_output=True, text=True).stdout.strip()
    sg_version = subprocess.run([*astgrep, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# {platform.machine()}, Python {platform.python_version()}, {versions}, {sg_version}")
    print(f"# {machine()}")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    version, empty = startup(tableshift, args.runs)
    print(f"# start-up: --version {version:.3f}s, audit of an empty directory {empty:.3f}s")
    print(HEADER)
    print(DETAIL, flush=True)

    scaling: list[tuple[str, float]] = []
    for tree in args.trees:
        print(row(tree.resolve().name, measure(tree.resolve(), args.runs, tableshift, astgrep)), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="tableshift-bench-trees-"))
    try:
        for size in sizes:
            tree = work / f"{size}x"
            generate(tree, args.files * size, seed=7)
            subprocess.run(["git", "init", "-q", str(tree)], check=True)
            runs = args.runs if size < 16 else max(3, args.runs // 2)
            r = measure(tree, runs, tableshift, astgrep)
            print(row(f"generated {size}x", r), flush=True)
            scaling.append((f"{size}x", r["cold"]))
            if not args.keep:
                shutil.rmtree(tree, ignore_errors=True)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if len(scaling) > 1:
        base = scaling[0][1]
        print("# scaling (cold, relative to the first generated tree): " + ", ".join(f"{label} {t / base:.1f}x" for label, t in scaling))


if __name__ == "__main__":
    main()
