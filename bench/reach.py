"""Reach beyond `.from()` on held-out real trees: generated types naming a table and PostgREST
URLs, tableshift's audit against a hand-made oracle (bench/reach_oracle.json).

    python bench/reach.py --root owner+name=PATH [--root ...]

Each PATH is a checkout of the oracle's repository at its pinned commit. Prints per tree and in
all: type references found / wanted / both (precision, recall), REST URLs with a literal table
found under the right table, and those with a variable table reported as dynamic. Never part of
CI: the trees are not in this repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", default=[], help="owner+name=PATH of a checkout")
    args = parser.parse_args()
    oracle = json.loads((HERE / "reach_oracle.json").read_text())
    roots = dict(r.split("=", 1) for r in args.root)
    total = {"tp": 0, "found": 0, "want": 0, "rest": 0, "rest_want": 0, "dyn": 0, "dyn_want": 0}
    for repo in oracle["repos"]:
        key = repo["repository"].rstrip("/").split("github.com/")[1].replace("/", "+")
        if key not in roots:
            print(f"{key}: no --root given, skipped")
            continue
        proc = subprocess.run([sys.executable, "-m", "tableshift", "audit", ".", "--format", "json", "--no-cache"], cwd=roots[key], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{key}: audit failed: {proc.stderr.strip()[-300:]}")
            continue
        calls = json.loads(proc.stdout)["calls"]
        types = {(c["file"], c["line"], c["table"]) for c in calls if c["kind"] == "type"}
        want = {(t["file"], t["line"], t["table"]) for t in repo["types"]}
        rest = {(c["file"], c["line"]): ("dynamic" if c["dynamic"] else f"rpc:{c['name']}" if c["kind"] == "rpc" else c["table"]) for c in calls if c["kind"] in ("rest", "rpc")}
        literal = {(r["file"], r["line"]): r["table"] for r in repo["rest"] if r["table"] != "dynamic"}
        dynamic = [(r["file"], r["line"]) for r in repo["rest"] if r["table"] == "dynamic"]
        hit = sum(rest.get(k) == v for k, v in literal.items())
        dyn = sum(rest.get(k) == "dynamic" for k in dynamic)
        print(f"{key}: types {len(types)} found, {len(want)} wanted, {len(types & want)} both; REST literal {hit}/{len(literal)}, dynamic {dyn}/{len(dynamic)}")
        for miss in sorted(want - types)[:10]:
            print(f"  type missed: {miss}")
        for extra in sorted(types - want)[:10]:
            print(f"  type not in the oracle: {extra}")
        for k, v in sorted(literal.items()):
            if rest.get(k) != v:
                print(f"  REST missed: {k} {v} (found {rest.get(k)})")
        for name, value in (("tp", len(types & want)), ("found", len(types)), ("want", len(want)), ("rest", hit), ("rest_want", len(literal)), ("dyn", dyn), ("dyn_want", len(dynamic))):
            total[name] += value
    t = total
    print(
        f"all: types precision {t['tp'] / max(t['found'], 1):.3f}, recall {t['tp'] / max(t['want'], 1):.3f};"
        f" REST with a literal table, recall {t['rest'] / max(t['rest_want'], 1):.3f}; dynamic as dynamic {t['dyn']}/{t['dyn_want']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
