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
"""

from __future__ import annotations

import argparse
import os
import platform
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


def _run(cmd: list[str], cwd: Path) -> float:
    """Wall seconds (exit 0 or 1 accepted: check fails on new usage by design)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return wall


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


def astgrep_command(astgrep: list[str], files: dict[str, int]) -> list[str]:
    rules = [
        f"id: from-{lang.lower()}\nlanguage: {lang}\nrule: {{pattern: $A.from($T)}}"
        for lang, exts in SG_LANGUAGES.items()
        if any(files.get(ext) for ext in exts)
    ]
    return [*astgrep, "scan", "--inline-rules", "\n---\n".join(rules or [next(iter(SG_LANGUAGES))]), "."]


def paired(runs: int, first: Callable[[], float], second: Callable[[], float]) -> tuple[float, float]:
    a, b = [], []
    for _ in range(runs):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def measure(tree: Path, runs: int, tableshift: list[str], astgrep: list[str]) -> dict[str, float]:
    files = inventory(tree)
    work = Path(tempfile.mkdtemp(prefix="tableshift-bench-"))
    cache = work / "cache"
    common = ["--rules", str(RULES), "--cache-dir", str(cache)]
    audit = [*tableshift, "audit", ".", *common, "--format", "json", "--output", os.devnull]
    cold_audit = [*tableshift, "audit", ".", "--rules", str(RULES), "--no-cache", "--format", "json", "--output", os.devnull]
    sg = astgrep_command(astgrep, files)
    victim = next(
        (p for p in sorted(tree.rglob("*")) if p.suffix in (".ts", ".tsx", ".js", ".vue", ".svelte") and p.is_file() and b".from(" in p.read_bytes()),
        None,
    )
    original = victim.read_bytes() if victim is not None else b""
    out: dict[str, float] = {"files": sum(v for k, v in files.items() if k.startswith(".")), "MB": files["bytes"] / 1e6}
    out["with .from("] = files["with_from"]

    def cold() -> float:
        return _run(cold_audit, tree)

    def warm() -> float:
        return _run(audit, tree)

    def edited() -> float:
        if victim is None:
            return warm()
        victim.write_bytes(original + f"\n// edit {time.monotonic_ns()}\n".encode())
        return _run(audit, tree)

    try:
        out["ast-grep"], out["cold"] = paired(runs, lambda: _run(sg, tree), cold)
        _run(audit, tree)  # fill the cache
        sg_again, out["warm"] = paired(runs, lambda: _run(sg, tree), warm)
        out["ast-grep"] = statistics.median([out["ast-grep"], sg_again])
        out["1 edit"] = statistics.median([edited() for _ in range(runs)])
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
    f"{'tree':<34} {'files':>6} {'MB':>5} {'.from(':>6} {'ast-grep':>8} {'cold':>6} {'warm':>6} {'1 edit':>6}"
    f" {'cold/sg':>7} {'warm/sg':>7} {'edit/sg':>7} {'check/a':>7} {'patch/a':>7} {'peak MiB':>8}"
)


def row(label: str, r: dict[str, float]) -> str:
    sg = r["ast-grep"]
    check = max(r["check (cold)"] / r["audit (cold)"], r["check (warm)"] / r["audit (warm)"])
    patch = max(r["patch (cold)"] / r["audit (cold) for patch"], r["patch (warm)"] / r["audit (warm) for patch"])
    return (
        f"{label[:34]:<34} {r['files']:>6.0f} {r['MB']:>5.1f} {r['with .from(']:>6.0f} {sg:>7.2f}s {r['cold']:>5.2f}s {r['warm']:>5.2f}s"
        f" {r['1 edit']:>5.2f}s {r['cold'] / sg:>7.2f} {r['warm'] / sg:>7.2f} {r['1 edit'] / sg:>7.2f} {check:>7.2f} {patch:>7.2f}"
        f" {r['peak MiB']:>8.0f}"
    )


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
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions}, {sg_version}")
    version, empty = startup(tableshift, args.runs)
    print(f"# start-up: --version {version:.3f}s, audit of an empty directory {empty:.3f}s")
    print(HEADER, flush=True)

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
