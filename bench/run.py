"""Time tableshift against ast-grep on generated trees (or any path): cold, warm, one file changed,
the scaling curve and peak memory. Prints medians of paired runs and their ratios.

    python bench/run.py                      # generate 1x (2,000 files), 4x, 16x under /tmp and measure
    python bench/run.py --path SOME/REPO     # measure one existing tree (no scaling curve)
    python bench/run.py --runs 5 --scales 1 4 --files 2000

Needs `ast-grep` (pip install '.[bench]') on PATH or beside the Python running this script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

RULES = ROOT / "rules" / "content-consolidation.toml"


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"bench: {name} not found: pip install -e '.[bench]'")
    return found


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds of the command (exit 0 or 1 accepted: check fails on new usage by design)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return wall, 0


def peak_rss(cmd: list[str], cwd: Path) -> int:
    """Peak RSS in KiB of one run: GNU time's %M, the largest resident set of the main process or
    of any one pool worker (each worker holds one batch; the main process holds the report)."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    if not Path(gnu_time).exists():
        return 0
    proc = subprocess.run([gnu_time, "-f", "%M", *cmd], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        return int(proc.stderr.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def measure(tree: Path, runs: int, tableshift: list[str], astgrep: list[str]) -> dict[str, float]:
    cache = tree / ".tableshift-cache-bench"
    audit = [*tableshift, "audit", ".", "--rules", str(RULES), "--format", "json", "--output", os.devnull, "--cache-dir", str(cache)]
    sg = [*astgrep, "run", "-p", "$A.from($T)", "-l", "ts", "."]
    cold, warm, one, sg_times = [], [], [], []
    victim = next(p for p in sorted(tree.rglob("*.ts")) if b".from(" in p.read_bytes())
    original = victim.read_bytes()
    try:
        for i in range(runs):
            # paired: ast-grep and tableshift back to back, so machine noise hits both
            sg_times.append(timed(sg, tree)[0])
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(timed(audit, tree)[0])
            warm.append(timed(audit, tree)[0])
            victim.write_bytes(original + f"\n// edit {i}\n".encode())
            one.append(timed(audit, tree)[0])
    finally:
        victim.write_bytes(original)
        shutil.rmtree(cache, ignore_errors=True)
    # check and patch, cold like the audit above: they should cost the audit plus their own output
    baseline = tree / ".tableshift-bench-baseline.json"
    no_cache = ["--rules", str(RULES), "--no-cache"]
    subprocess.run([*tableshift, "baseline", ".", *no_cache, "--output", str(baseline)], cwd=tree, capture_output=True)
    check = [timed([*tableshift, "check", ".", *no_cache, "--baseline", str(baseline), "--format", "json"], tree)[0] for _ in range(runs)]
    patch = [timed([*tableshift, "patch", ".", *no_cache, "--output", os.devnull], tree)[0] for _ in range(runs)]
    baseline.unlink(missing_ok=True)
    result = {
        "ast-grep": statistics.median(sg_times),
        "cold": statistics.median(cold),
        "warm": statistics.median(warm),
        "one file changed": statistics.median(one),
        "check (cold)": statistics.median(check),
        "patch (cold)": statistics.median(patch),
    }
    shutil.rmtree(cache, ignore_errors=True)
    result["peak MiB (cold)"] = peak_rss(audit, tree) / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, help="measure this tree instead of generated ones")
    parser.add_argument("--files", type=int, default=2000, help="files in the 1x generated tree")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tableshift-bench"))
    args = parser.parse_args()

    tableshift = [_tool("tableshift")]
    astgrep = [_tool("ast-grep")]
    trees: list[tuple[str, Path]] = []
    if args.path is not None:
        trees.append((str(args.path), args.path.resolve()))
    else:
        for scale in args.scales:
            tree = args.work / f"{scale}x"
            size = generate(tree, args.files * scale, seed=7)
            subprocess.run(["git", "init", "-q", str(tree)], check=True)
            trees.append((f"{scale}x ({args.files * scale} files, {size / 1e6:.0f} MB)", tree))

    print(
        f"{'tree':<30} {'ast-grep':>9} {'cold':>7} {'warm':>7} {'1 edit':>7} {'cold/sg':>8} {'warm/sg':>8}"
        f" {'peak MiB':>9} {'check':>7} {'patch':>7}"
    )
    rows = []
    for label, tree in trees:
        runs = args.runs if "16x" not in label else max(1, args.runs // 2)
        r = measure(tree, runs, tableshift, astgrep)
        rows.append((label, r))
        print(
            f"{label:<30} {r['ast-grep']:>8.2f}s {r['cold']:>6.2f}s {r['warm']:>6.2f}s {r['one file changed']:>6.2f}s"
            f" {r['cold'] / r['ast-grep']:>8.2f} {r['warm'] / r['ast-grep']:>8.2f} {r['peak MiB (cold)']:>9.0f}"
            f" {r['check (cold)']:>6.2f}s {r['patch (cold)']:>6.2f}s",
            flush=True,
        )
    if len(rows) > 1:
        base = rows[0][1]["cold"]
        print("\nscaling (cold time relative to the first tree): " + ", ".join(f"{label.split()[0]} {r['cold'] / base:.1f}x" for label, r in rows))


if __name__ == "__main__":
    main()
