"""The link pass against hostile trees (issue 18): every walk and read is bounded, nothing outside
the repository is read, and settling a constant is linear in its uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import run_cli, write_project
from tableshift.link.constants import Member, Use, settle
from tableshift.model import Origin, Span

CALL = "import { T } from '{spec}';\nexport const f = () => supabase.from(T).select('id');\n"


def audit(root: Path, *extra: str) -> dict:
    proc = run_cli("audit", ".", "-f", "json", "--no-cache", *extra, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def the_call(data: dict) -> dict:
    [call] = [c for c in data["calls"] if c["kind"] == "table"]
    return call


def test_workspace_globs_with_many_levels_and_link_loops_end(tmp_path):
    root = write_project(
        tmp_path / "repo",
        {
            "package.json": json.dumps({"workspaces": ["*/*/*/*/*/*/*/*", "packages/*"]}),
            "packages/db/package.json": json.dumps({"name": "@app/db", "main": "index.ts"}),
            "packages/db/index.ts": "export const T = 'content_metadata';\n",
            "apps/web/q.ts": CALL.replace("{spec}", "@app/db"),
        },
    )
    loops = root / "x"
    loops.mkdir()
    for i in range(10):  # ten links to their own folder: 10^7 paths for Path.glob to follow
        (loops / f"l{i}").symlink_to(".")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "package.json").write_text(json.dumps({"name": "@app/db", "main": "index.ts"}))
    (outside / "index.ts").write_text("export const T = 'tweets';\n")
    (root / "packages" / "zz").symlink_to(outside)
    call = the_call(audit(root))
    assert call["table"] == "content_metadata" and not call["dynamic"], call


def test_a_constants_module_past_the_size_limit_is_not_read(tmp_path):
    root = write_project(tmp_path / "repo", {"src/q.ts": CALL.replace("{spec}", "./tables")})
    big = root / "src" / "tables.ts"
    with open(big, "wb") as handle:
        handle.write(b"export const T = 'content_metadata';\n")
        handle.truncate(3_000_000)  # sparse: costs no disk
    call = the_call(audit(root))
    assert call["dynamic"]
    assert any("--max-file-size" in r for r in call["reasons"]), call["reasons"]


def test_tsconfig_extends_never_reads_outside_the_repository(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"compilerOptions": {"baseUrl": ".", "paths": {"SECRET_KEY_NAME/*": ["x/*"]}}}')
    files = {
        "tsconfig.json": json.dumps({"extends": str(outside)}),
        "web/tsconfig.json": json.dumps({"extends": "../../outside.json"}),
        "src/q.ts": CALL.replace("{spec}", "@/tables"),
        "web/q.ts": CALL.replace("{spec}", "@/tables"),
    }
    root = write_project(tmp_path / "repo", files)
    data = audit(root)
    text = json.dumps(data)
    assert "SECRET_KEY_NAME" not in text and "compilerOptions" not in text
    reasons = [r for c in data["calls"] for r in c["reasons"]]
    assert any("outside the repository" in r for r in reasons), reasons


def test_a_tsconfig_that_does_not_parse_is_named_without_its_text(tmp_path):
    root = write_project(tmp_path / "repo", {"tsconfig.json": "PRIVATE{{{", "src/q.ts": CALL.replace("{spec}", "@/tables")})
    text = json.dumps(audit(root))
    assert "PRIVATE" not in text and "'P'" not in text and "tsconfig.json: does not parse" in text


def test_settling_a_constant_used_from_100000_places_is_linear():
    n = 100_000
    origin = Origin("m.ts", "/m.ts", Span(0, 1), "T")
    members = [Member(f"f{i % 100}.ts", Span(i * 10, i * 10 + 8), 1, True, "content_queue") for i in range(n)]
    uses = [Use(f"f{i % 100}.ts", i * 10 + 2, i * 10 + 5, 1, "T") for i in reversed(range(n))]
    assert settle(origin, members, uses, scanned=True) is None
    uses.append(Use("other.ts", 0, 1, 1, "T"))
    assert "at other.ts:1" in (settle(origin, members, uses, scanned=True) or "")


def test_a_deep_export_star_chain_says_so(tmp_path):
    files = {f"src/m{i}.ts": f"export * from './m{i + 1}';\n" for i in range(200)}
    files["src/m200.ts"] = "export const T = 'content_metadata';\n"
    files["src/q.ts"] = CALL.replace("{spec}", "./m0")
    call = the_call(audit(write_project(tmp_path / "repo", files)))
    assert call["dynamic"] and any("too many re-exports to follow" in r for r in call["reasons"]), call["reasons"]


def test_a_cycle_in_one_export_star_branch_does_not_hide_a_sibling(tmp_path):
    files = {
        "src/index.ts": "export * from './a';\nexport * from './b';\n",
        "src/a.ts": "export * from './index';\n",
        "src/b.ts": "export const T = 'content_metadata';\n",
        "src/q.ts": CALL.replace("{spec}", "./index"),
    }
    call = the_call(audit(write_project(tmp_path / "repo", files)))
    assert call["table"] == "content_metadata" and not call["dynamic"], call
