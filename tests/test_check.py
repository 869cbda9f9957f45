"""`tableshift baseline` and `check` on a repository with history, built by each test in a temporary git repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from conftest import RULES
from helpers import run_cli

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

QUEUE = """import { supabase } from './db';

export async function next() {
  const { data, error } = await supabase.from('content_metadata').select('decision_id, content').eq('status', 'queued');
  if (error) throw error;
  return data;
}

export async function posted(id: string) {
  return supabase.from('tweets').select('tweet_id').eq('decision_id', id);
}
"""

METRICS = """import { supabase } from './db';

export async function record(tweetId: string, likes: number) {
  return supabase.from('outcomes').insert({ tweet_id: tweetId, likes_count: likes });
}

export async function fromTable(table: string) {
  return supabase.from(table).select('*');
}
fromTable('tweet_metrics');
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/queue.ts").write_text(QUEUE)
    (tmp_path / "src/metrics.ts").write_text(METRICS)
    (tmp_path / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\npaths = ["src"]\n')
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    proc = run_cli("baseline", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "baseline")
    return tmp_path


def check(repo: Path, *args: str):
    return run_cli("check", *args, cwd=repo)


def test_baseline_is_sorted_stable_json(repo):
    data = json.loads((repo / "tableshift-baseline.json").read_text())
    assert data["rules"] == "content-consolidation" and data["total"] == 4
    assert list(data["files"]) == ["src/metrics.ts", "src/queue.ts"]
    assert data["files"]["src/queue.ts"]["tweets"]["allowed"] == 1
    assert data["files"]["src/metrics.ts"]["(dynamic)"]["allowed"] == 1
    first = (repo / "tableshift-baseline.json").read_bytes()
    assert run_cli("baseline", cwd=repo).returncode == 0
    assert (repo / "tableshift-baseline.json").read_bytes() == first


def test_baseline_says_what_it_wrote_in_plain_lines(repo):
    """As `_say` writes every line: the name as it is (printable), none with -q."""
    proc = run_cli("baseline", "--output", "ci/:fire:[b].json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "wrote ci/:fire:[b].json: 4 legacy uses in 2 files\n" in proc.stderr
    proc = run_cli("baseline", "--update", "--output", "ci/:fire:[b].json", cwd=repo)
    assert "updated ci/:fire:[b].json: 4 → 4 legacy uses allowed\n" in proc.stderr
    assert run_cli("-q", "baseline", "--output", "ci/:fire:[b].json", cwd=repo).stderr == ""


def test_clean_tree_passes(repo):
    proc = check(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tableshift check: passed" in proc.stdout


def test_a_new_legacy_call_fails_with_exactly_that_call(repo):
    text = (repo / "src/queue.ts").read_text()
    (repo / "src/queue.ts").write_text(text + "\nexport const more = () => supabase.from('tweets').delete().eq('tweet_id', 'x');\n")
    proc = check(repo)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "src/queue.ts:13:36: TS001 legacy table 'tweets' (use 'posted_content'): 2 calls here, baseline allows 1"
    assert lines[-1].startswith("tableshift check: FAILED: 1 new legacy call")


def test_a_new_generated_type_naming_a_legacy_table_fails(repo):
    (repo / "src/types.ts").write_text("import type { Tables } from './database.types';\nexport type Row = Tables<'outcomes'>;\n")
    proc = check(repo)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("src/types.ts:2:27: TS001 legacy table 'outcomes' (use 'engagement_metrics')")
    data = json.loads(check(repo, "--format", "json").stdout)
    assert [(n["file"], n["line"], n["table"], n["kind"]) for n in data["new"]] == [("src/types.ts", 2, "outcomes", "type")]


def test_a_new_rest_url_on_a_legacy_table_fails(repo):
    (repo / "src/rest.ts").write_text("export const get = (u: string) => fetch(`${u}/rest/v1/outcomes?select=likes_count`);\n")
    data = json.loads(check(repo, "--format", "json").stdout)
    assert [(n["file"], n["line"], n["table"], n["kind"]) for n in data["new"]] == [("src/rest.ts", 1, "outcomes", "rest")]
    assert check(repo).returncode == 1


def test_new_sql_in_a_string_on_a_legacy_table_fails(repo):
    (repo / "src/report.ts").write_text("export const rows = () => pool.query('SELECT likes_count FROM outcomes WHERE tweet_id = $1', [1]);\n")
    data = json.loads(check(repo, "--format", "json").stdout)
    assert [(n["file"], n["line"], n["table"], n["kind"]) for n in data["new"]] == [("src/report.ts", 1, "outcomes", "sql")]


def test_the_unmatched_call_is_reported_even_when_it_comes_first(repo):
    text = (repo / "src/queue.ts").read_text()
    (repo / "src/queue.ts").write_text("const early = () => supabase.from('tweets').upsert({ tweet_id: 'y' });\n" + text)
    data = json.loads(check(repo, "--format", "json").stdout)
    assert [(n["file"], n["line"], n["table"], n["status"]) for n in data["new"]] == [("src/queue.ts", 1, "tweets", "legacy")]


def test_moving_and_reformatting_calls_passes(repo):
    moved = QUEUE.replace(
        "return supabase.from('tweets').select('tweet_id').eq('decision_id', id);",
        "return supabase\n    .from('tweets')\n    .select('tweet_id')\n    .eq('decision_id', id);",
    )
    (repo / "src/queue.ts").write_text("// a new header comment\n\n" + moved)
    (repo / "src/sub").mkdir()
    assert check(repo).returncode == 0


def test_removing_a_call_passes_and_offers_to_tighten(repo):
    (repo / "src/queue.ts").write_text(QUEUE.replace("supabase.from('tweets')", "supabase.from('posted_content')"))
    proc = check(repo)
    assert proc.returncode == 0
    assert "src/queue.ts: tweets: 0 calls now, baseline allows 1 (can be tightened)" in proc.stdout
    assert "tableshift baseline --update" in proc.stdout
    assert run_cli("baseline", "--update", cwd=repo).returncode == 0
    data = json.loads((repo / "tableshift-baseline.json").read_text())
    assert "tweets" not in data["files"]["src/queue.ts"] and data["total"] == 3


def test_update_never_raises_a_count(repo):
    (repo / "src/queue.ts").write_text(QUEUE + "\nconst x = () => supabase.from('tweets').select('*');\n")
    assert run_cli("baseline", "--update", cwd=repo).returncode == 0
    data = json.loads((repo / "tableshift-baseline.json").read_text())
    assert data["files"]["src/queue.ts"]["tweets"]["allowed"] == 1
    assert check(repo).returncode == 1


def test_suppression_with_a_reason_exempts_the_call(repo):
    (repo / "src/queue.ts").write_text(
        QUEUE + "\n// tableshift-ignore: read-only report, archived with the table\nconst r = () => supabase.from('tweets').select('*');\n"
    )
    proc = check(repo)
    assert proc.returncode == 0, proc.stdout
    assert "1 suppressed" in proc.stdout
    audit = json.loads(run_cli("audit", "-f", "json", cwd=repo).stdout)
    [call] = [c for c in audit["calls"] if c["suppressed"]]
    assert call["suppressed"] == "read-only report, archived with the table"
    assert "suppressed: read-only report, archived with the table" in call["reasons"]


def test_suppression_without_a_reason_is_an_error(repo):
    (repo / "src/queue.ts").write_text(QUEUE + "\nconst r = () => supabase.from('tweets').select('*'); // tableshift-ignore\n")
    proc = check(repo)
    assert proc.returncode == 1
    assert "src/queue.ts:13:" in proc.stdout and "tableshift-ignore needs a reason" in proc.stdout
    assert "legacy table 'tweets'" in proc.stdout  # and it is not exempt


def test_dynamic_calls_warn_and_strict_makes_them_errors(repo):
    (repo / "src/metrics.ts").write_text(METRICS + "fromTable('posts');\nexport const again = (t: string) => supabase.from(t).delete();\nagain('outcomes');\n")
    proc = check(repo)
    assert proc.returncode == 0
    assert "warning: table may be legacy 'outcomes'" in proc.stdout
    assert check(repo, "--strict").returncode == 1
    (repo / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\npaths = ["src"]\nstrict = true\n')
    assert check(repo).returncode == 1
    assert check(repo, "--no-strict").returncode == 0


def test_github_format(repo):
    (repo / "src/queue.ts").write_text(QUEUE + "const z = () => supabase.from('posts').select('id');\n")
    out = check(repo, "--format", "github").stdout.splitlines()
    assert out[0].startswith("::error file=src/queue.ts,line=12,col=")
    assert "title=tableshift%3A posts::legacy table 'posts' (use 'posted_content'): 1 call here, baseline allows 0" in out[0]


def test_sarif_validates_against_the_official_schema_and_carries_fixes(repo):
    (repo / "src/queue.ts").write_text(QUEUE + "const z = () => supabase.from('posts').select('id');\n")
    (repo / "src/metrics.ts").write_text(METRICS + "export const w = (t: string) => supabase.from(t).select();\nw('posts');\n")
    proc = check(repo, "--format", "sarif", "--strict")
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"legacy-table", "dynamic-legacy-table"}
    [legacy] = [r for r in results if r["ruleId"] == "legacy-table"]
    [change] = legacy["fixes"][0]["artifactChanges"]
    [replacement] = change["replacements"]
    data = (repo / "src/queue.ts").read_bytes()
    start = replacement["deletedRegion"]["byteOffset"]
    assert data[start : start + replacement["deletedRegion"]["byteLength"]] == b"posts"
    assert replacement["insertedContent"]["text"] == "posted_content"
    assert "tableshift check: FAILED" in proc.stderr


def test_changed_since_checks_only_changed_and_untracked_files(repo):
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "src/metrics.ts").write_text(METRICS + "const n = () => supabase.from('outcomes').delete();\n")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "more metrics")
    (repo / "src/new.ts").write_text("export const q = () => supabase.from('tweets').select('*');\n")
    data = json.loads(check(repo, "--changed-since", "main", "--format", "json").stdout)
    assert data["summary"]["files_scanned"] == 2
    assert sorted(n["file"] for n in data["new"]) == ["src/metrics.ts", "src/new.ts"]
    (repo / "src/new.ts").unlink()
    git(repo, "checkout", "-q", "main")
    clean = json.loads(check(repo, "--changed-since", "HEAD", "--format", "json").stdout)
    assert clean["summary"]["files_scanned"] == 0 and clean["summary"]["passed"]


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_missing_baseline(repo):
    (repo / "tableshift-baseline.json").unlink()
    assert "baseline not found" in _one_line_error(check(repo))


def test_corrupt_baseline(repo):
    (repo / "tableshift-baseline.json").write_text("{ not json")
    assert "corrupt baseline" in _one_line_error(check(repo))
    (repo / "tableshift-baseline.json").write_text('{"tool": "tableshift", "schema_version": 1, "rules": "content-consolidation", "files": {"a.ts": {"tweets": {"allowed": -1, "code": []}}}}')
    assert "corrupt baseline" in _one_line_error(check(repo))


def test_baseline_from_another_rules_set(repo):
    (repo / "other.toml").write_text("name = 'other'\n[[table]]\nlegacy = 'tweets'\ntarget = 'posted_content'\n")
    line = _one_line_error(check(repo, "--rules", "other.toml"))
    assert "baseline was made with rules 'content-consolidation', not 'other'" in line


def test_config_with_an_unknown_key(repo):
    (repo / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\nbasline = "x.json"\n')
    assert "tableshift.toml: basline: unknown key" in _one_line_error(check(repo))


def test_config_in_pyproject(repo):
    (repo / "tableshift.toml").unlink()
    (repo / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.tableshift]\nrules = "{RULES.as_posix()}"\npaths = ["src"]\n')
    assert check(repo).returncode == 0
    (repo / "pyproject.toml").write_text(f'[tool.tableshift]\nrules = "{RULES.as_posix()}"\nstrictt = true\n')
    assert "tool.tableshift.strictt: unknown key" in _one_line_error(check(repo))


def test_config_is_found_from_a_subdirectory(repo):
    proc = run_cli("check", cwd=repo / "src")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_without_rules_anywhere(tmp_path):
    assert "no rules file" in _one_line_error(run_cli("check", cwd=tmp_path))


def test_update_keeps_files_outside_the_paths(repo):
    assert run_cli("baseline", "--update", "src/queue.ts", cwd=repo).returncode == 0
    data = json.loads((repo / "tableshift-baseline.json").read_text())
    assert "src/metrics.ts" in data["files"]


def test_a_python_file_with_a_syntax_error_is_still_judged(repo):
    (repo / "src/job.py").write_text("def f(supabase):\n    return supabase.table('tweets').select('id').execute()\n")
    assert run_cli("baseline", cwd=repo).returncode == 0
    (repo / "src/job.py").write_text("def f(supabase:\n    return supabase.table('tweets').select('id').execute()\n")
    proc = check(repo)
    assert proc.returncode == 0, proc.stdout  # the same call, found by the error-tolerant parse
    assert "can be tightened" not in proc.stdout
    (repo / "src/job.py").write_text(
        "def f(supabase:\n    return supabase.table('tweets').select('id').execute()\n"
        "def g(supabase):\n    return supabase.table('posts').select('id').execute()\n"
    )
    proc = check(repo)
    assert proc.returncode == 1 and "src/job.py:4:" in proc.stdout and "legacy table 'posts'" in proc.stdout


def test_a_moved_file_keeps_its_allowances(repo):
    git(repo, "mv", "src/queue.ts", "src/queue2.ts")
    proc = check(repo)
    assert proc.returncode == 0, proc.stdout


def test_config_exclude_is_relative_to_the_config(repo):
    (repo / "src/generated").mkdir()
    (repo / "src/generated/g.ts").write_text("export const g = () => supabase.from('tweets').select();\n")
    (repo / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\npaths = ["src"]\nexclude = ["src/generated/"]\n')
    assert check(repo).returncode == 0


def test_broken_pyproject_is_reported_not_hidden(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.tableshift]\nrules = \n")
    assert "invalid TOML" in _one_line_error(run_cli("check", cwd=tmp_path))


def test_unknown_ref_for_changed_since(repo):
    assert "--changed-since nosuchref:" in _one_line_error(check(repo, "--changed-since", "nosuchref"))


def test_an_rpc_of_a_function_using_a_legacy_table_counts_with_the_legacy_schema(repo):
    (repo / "schema.sql").write_text(
        "CREATE TABLE outcomes (tweet_id text, likes_count int);\n"
        "CREATE FUNCTION record_outcome(t text, l int) RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO outcomes VALUES (t, l); END $$;\n"
    )
    (repo / "src/rpc.ts").write_text("export const rec = () => supabase.rpc('record_outcome', { t: 'x', l: 1 });\n")
    assert check(repo).returncode == 0  # without the schema the function's body is not known
    data = json.loads(check(repo, "--format", "json", "--legacy-schema", "schema.sql").stdout)
    assert [(n["file"], n["line"], n["table"], n["kind"]) for n in data["new"]] == [("src/rpc.ts", 1, "outcomes", "rpc")]
    (repo / "tableshift.toml").write_text((repo / "tableshift.toml").read_text() + 'legacy_schema = "schema.sql"\n')
    assert check(repo).returncode == 1  # the config says it too


def test_a_baseline_s_file_keys_follow_the_working_folder_of_each_run(tmp_path, monkeypatch):
    """The folders a key is made of are remembered for the process: a baseline named relatively
    (`.`) must not keep the working folder of an earlier run in the same process."""
    from tableshift.baseline import file_key

    for name in ("one", "two"):
        (tmp_path / name / "src").mkdir(parents=True)
        monkeypatch.chdir(tmp_path / name)
        assert file_key("src/b.ts", cwd=Path.cwd(), base=Path("base.json").parent) == "src/b.ts"
