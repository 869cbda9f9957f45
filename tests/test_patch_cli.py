"""`tableshift patch` end to end: patches git accepts, --apply safety, split patches, bad inputs."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from conftest import RULES
from helpers import run_cli, run_cli_bytes
from tableshift import engine, patching
from tableshift.discover import discover
from tableshift.rules import load_rules

APP = {
    "src/queue.ts": """import { supabase } from './db';
export async function next() {
  const { data, error } = await supabase
    .from('content_metadata')
    .select('decision_id, content, topic_cluster')
    .eq('status', 'queued')
    .order('created_at', { ascending: true })
    .limit(1);
  if (error) throw error;
  return data;
}
""",
    "src/metrics.ts": """import { supabase } from './db';
export async function latest(tweetId: string) {
  return supabase.from('outcomes').select('likes_count, engagement_rate').eq('tweet_id', tweetId);
}
export async function record(row: Record<string, unknown>) {
  return supabase.from('outcomes').insert(row);
}
""",
    "src/posted.ts": "export const mark = (id: string) =>\r\n  supabase.from('tweets').update({ posted_at: new Date().toISOString() }).eq('tweet_id', id);\r\n",
}


@pytest.fixture
def project(tmp_path):
    for rel, body in APP.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    return tmp_path


def test_patch_on_stdout_applies_with_git_and_is_idempotent(project):
    proc = run_cli_bytes("patch", "--rules", str(RULES), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert b"tableshift patch:" in proc.stderr
    patch = proc.stdout.decode()
    assert "diff --git a/src/queue.ts b/src/queue.ts" in patch
    assert "+    .from('content_queue')" in patch
    assert "+    .select('decision_id, content, topic_cluster:raw_topic')" in patch
    assert "src/metrics.ts" in patch and "posted.ts" in patch
    (project / "p.diff").write_bytes(proc.stdout)
    subprocess.run(["git", "apply", "--check", "p.diff"], cwd=project, check=True)
    subprocess.run(["git", "apply", "p.diff"], cwd=project, check=True)
    again = run_cli("patch", "--rules", str(RULES), cwd=project)
    assert again.returncode == 0 and again.stdout == ""


def test_crlf_file_patch_applies(project):
    proc = run_cli_bytes("patch", "src/posted.ts", "--rules", str(RULES), cwd=project)
    assert b"\r\n" in proc.stdout
    (project / "p.diff").write_bytes(proc.stdout)
    subprocess.run(["git", "apply", "p.diff"], cwd=project, check=True)
    assert (project / "src/posted.ts").read_bytes().count(b"\r\n") == 2
    assert b"from('posted_content')" in (project / "src/posted.ts").read_bytes()


def test_only_reads_and_report_json(project):
    proc = run_cli("patch", "--rules", str(RULES), "--only", "reads", "--report", "cov.json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "posted.ts" not in proc.stdout  # an update: a write
    report = json.loads((project / "cov.json").read_text())
    assert report["selection"]["only"] == "reads"
    assert {e["file"] for e in report["left_out"]} == {"src/posted.ts"}
    review = {(e["file"], e["line"]) for e in report["review"]}
    assert ("src/metrics.ts", 6) in review  # insert(row): payload not visible


def test_table_and_group_selection(project):
    proc = run_cli("patch", "--rules", str(RULES), "--table", "tweets", cwd=project)
    assert proc.stdout.count("diff --git") == 1 and "posted.ts" in proc.stdout
    proc = run_cli("patch", "--rules", str(RULES), "--group", "engagement", cwd=project)
    assert proc.stdout.count("diff --git") == 1 and "metrics.ts" in proc.stdout


def test_unknown_table_or_group_is_a_usage_error(project):
    proc = run_cli("patch", "--rules", str(RULES), "--table", "tweetz", cwd=project)
    assert proc.returncode == 2 and "--table tweetz: not a legacy table" in proc.stderr
    proc = run_cli("patch", "--rules", str(RULES), "--group", "nope", cwd=project)
    assert proc.returncode == 2 and "--group nope: not a group" in proc.stderr


def test_split_dir_writes_one_patch_per_group(project):
    proc = run_cli("patch", "--rules", str(RULES), "--split-dir", "patches", cwd=project)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (project / "patches").iterdir() if p.suffix == ".patch")
    assert names == ["content-queue.patch", "engagement.patch", "posted-content.patch"]
    for name in names:
        subprocess.run(["git", "apply", "--check", f"patches/{name}"], cwd=project, check=True)


def test_split_dir_removes_the_patches_of_groups_with_no_change_left(project):
    assert run_cli("patch", "--rules", str(RULES), "--split-dir", "patches", cwd=project).returncode == 0
    (project / "patches" / "notes.patch").write_text("mine\n")  # not tableshift's: never touched
    assert run_cli("patch", "--rules", str(RULES), "--group", "engagement", "--apply", cwd=project).returncode == 0
    proc = run_cli("patch", "--rules", str(RULES), "--split-dir", "patches", cwd=project)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (project / "patches").iterdir() if p.suffix == ".patch")
    assert names == ["content-queue.patch", "notes.patch", "posted-content.patch"]
    assert "removed patches/engagement.patch (its group has no change now)" in proc.stderr


def test_apply_rewrites_in_place(project):
    proc = run_cli("patch", "--rules", str(RULES), "--apply", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "from('content_queue')" in (project / "src/queue.ts").read_text()
    assert not list(project.rglob("*.tmp"))


def test_its_lines_name_files_as_they_are_and_load_no_terminal_library(project):
    """`rewrote` and `wrote` lines are plain text: a name holding `:fire:` or `[b]` is not turned
    into an emoji or markup (rich did the first even with markup off), and -q silences them."""
    odd = project / "src" / ":fire:[b].ts"
    odd.write_bytes((project / "src/queue.ts").read_bytes())
    proc = run_cli("patch", "--rules", str(RULES), "--apply", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "rewrote src/:fire:[b].ts\n" in proc.stderr
    assert "from('content_queue')" in odd.read_text()
    odd.write_bytes(APP["src/queue.ts"].encode())
    proc = run_cli("patch", "--rules", str(RULES), "--output", "out.diff", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "wrote out.diff\n" in proc.stderr and "diff --git a/src/:fire:[b].ts" in (project / "out.diff").read_text()
    quiet = run_cli("-q", "patch", "--rules", str(RULES), "--output", "out.diff", cwd=project)
    assert quiet.returncode == 0 and quiet.stderr == ""
    probe = "import sys, tableshift.cli, tableshift.patching; print(any(m == 'rich' or m.startswith('rich.') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_apply_skips_a_read_only_file(project):
    target = project / "src/queue.ts"
    before = target.read_bytes()
    target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        proc = run_cli("patch", "--rules", str(RULES), "--apply", cwd=project)
    finally:
        target.chmod(0o644)
    assert proc.returncode == 1
    assert "skipped src/queue.ts: file is read-only" in proc.stderr
    assert target.read_bytes() == before
    assert "from('engagement_metrics')" in (project / "src/metrics.ts").read_text()


def test_apply_skips_a_file_changed_between_scan_and_write(project, monkeypatch):
    monkeypatch.chdir(project)
    rules = load_rules(RULES)
    result = engine.run(discover(["."]), rules)
    edited = "// edited by someone else\n" + APP["src/queue.ts"]
    (project / "src/queue.ts").write_text(edited)
    selection = patching.selection(rules, only=None, tables=(), groups=())
    from rich.console import Console

    outcome = patching.run(result, rules, selection, apply=True, keep=True, err=Console(stderr=True))
    refused = {r.path: r.refused for r in outcome.rewrites}
    assert refused["src/queue.ts"] == "file changed since it was scanned"
    assert outcome.data["refused_files"][0]["file"] == "src/queue.ts"
    status = patching.emit(outcome, output=None, split_dir=None, err=Console(stderr=True))
    assert status == 1
    assert (project / "src/queue.ts").read_text() == edited


def test_output_file_and_conflicting_flags(project):
    proc = run_cli("patch", "--rules", str(RULES), "-o", "out.diff", cwd=project)
    assert proc.returncode == 0 and proc.stdout == ""
    assert (project / "out.diff").read_text().startswith("diff --git")
    proc = run_cli("patch", "--rules", str(RULES), "-o", "x.diff", "--apply", cwd=project)
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
    proc = run_cli("patch", "--rules", str(RULES), "--report", "r.txt", cwd=project)
    assert proc.returncode == 2 and "--report takes a .md or .json file" in proc.stderr


def test_rules_naming_a_missing_schema_file(project):
    (project / "r.toml").write_text("schema = 'nope.sql'\n[[table]]\nlegacy='tweets'\ntarget='posted_content'\n")
    proc = run_cli("patch", "--rules", "r.toml", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "tableshift: error: r.toml: schema: schema file 'nope.sql' not found"


def test_ddl_syntax_error_names_its_line(project):
    (project / "s.sql").write_text("CREATE TABLE posted_content (\n  id bigserial,\n  tweet_id textt textt\n);\n")
    (project / "r.toml").write_text("schema = 's.sql'\n[[table]]\nlegacy='tweets'\ntarget='posted_content'\n")
    proc = run_cli("patch", "--rules", "r.toml", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.startswith("tableshift: error: s.sql:3:18: SQL syntax error")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_patch_requires_rules(project):
    proc = run_cli("patch", cwd=project)
    assert proc.returncode == 2 and "--rules" in proc.stderr


def test_suppressed_calls_are_left_alone_and_reported(project):
    (project / "src/parity.ts").write_text(
        "// tableshift-ignore: parity check reads the old table on purpose\n"
        "export const old = () => supabase.from('tweets').select('tweet_id');\n"
    )
    proc = run_cli("patch", "src/parity.ts", "--rules", str(RULES), "--report", "cov.json", cwd=project)
    assert proc.returncode == 0 and proc.stdout == ""
    report = json.loads((project / "cov.json").read_text())
    [entry] = report["left_out"]
    assert entry["why"] == "suppressed: parity check reads the old table on purpose"


def test_a_selection_that_splits_a_shared_constant_leaves_its_calls_alone(project):
    (project / "src/shared.ts").write_text(
        "const T = 'tweets';\n"
        "export const r = () => supabase.from(T).select('tweet_id');\n"
        "export const w = () => supabase.from(T).delete().eq('tweet_id', 'x');\n"
    )
    proc = run_cli("patch", "src/shared.ts", "--rules", str(RULES), "--only", "reads", "--report", "cov.json", cwd=project)
    assert proc.returncode == 0 and proc.stdout == ""
    report = json.loads((project / "cov.json").read_text())
    whys = sorted(e["why"] for e in report["left_out"])
    assert whys == ["--only reads", "the constant naming its table also serves calls outside this selection"]
    full = run_cli("patch", "src/shared.ts", "--rules", str(RULES), cwd=project)
    assert "+const T = 'posted_content';" in full.stdout


def test_target_gaps_name_the_columns_to_add_and_adding_them_lets_patch_rewrite(tmp_path):
    """The audit lists each column the code uses that its target lacks, with its legacy type and
    the DDL; adding those statements to the target schema turns the calls waiting for them auto."""
    import shutil

    from conftest import FIXTURES

    db = tmp_path / "db"
    shutil.copytree(FIXTURES / "database", db)
    (db / "app" / "more.ts").write_text(
        "export const a = () => supabase.from('tweets').select('tweet_id, posted_at, reply_count');\n"
        "export const b = (id: string) => supabase.from('tweets').update({ reply_count: 2 }).eq('tweet_id', id);\n"
    )
    (db / "legacy.sql").write_text((db / "legacy.sql").read_text() + "\nALTER TABLE public.tweets ADD COLUMN reply_count integer;\n")
    args = ["--rules", str(db / "rules.toml"), "--no-cache"]
    proc = run_cli("audit", str(db / "app"), *args, "--legacy-schema", str(db / "legacy.sql"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    gaps = json.loads(proc.stdout)["target_gaps"]
    gap = next(g for g in gaps if g["column"] == "reply_count")
    assert gap == {"target": "posted_content", "column": "reply_count", "type": "integer", "calls": 2, "legacy": ["tweets"],
                   "ddl": 'ALTER TABLE "posted_content" ADD COLUMN "reply_count" integer;'}  # fmt: skip
    run_cli("patch", str(db / "app"), *args, "--report", str(tmp_path / "before.json"))
    review = {(e["file"].rsplit("/", 1)[-1], e["line"]) for e in json.loads((tmp_path / "before.json").read_text())["review"]}
    assert {("more.ts", 1), ("more.ts", 2)} <= review
    (db / "target.sql").write_text((db / "target.sql").read_text() + "\n" + "\n".join(g["ddl"].split("  --")[0] for g in gaps) + "\n")
    run_cli("patch", str(db / "app"), *args, "--report", str(tmp_path / "after.json"))
    review = {(e["file"].rsplit("/", 1)[-1], e["line"]) for e in json.loads((tmp_path / "after.json").read_text())["review"]}
    assert not {("more.ts", 1), ("more.ts", 2)} & review
