"""The conventions a new user expects from ruff, eslint, semgrep and ast-grep: short flags, quiet and
verbose, colour that follows NO_COLOR and --color, rule codes, exit-zero, patch --check, init."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RULES
from helpers import run_cli

APP = {
    "src/queue.ts": "import { supabase } from './db';\nexport const next = () => supabase.from('content_metadata').select('decision_id').eq('status', 'queued');\n",
    "src/app/api/customers/[id]/route.ts": "import { supabase } from '../../../../db';\nexport const GET = () => supabase.from('tweets').select('tweet_id');\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel, body in APP.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "empty").mkdir()
    made = run_cli("baseline", "empty", "--rules", str(RULES), "-o", "empty-baseline.json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path


def run_tty_env(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tableshift", *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})})


def test_short_help_and_version_flags_and_plain_help():
    assert run_cli("-V").stdout.startswith("tableshift ")
    help_text = run_cli("-h").stdout
    commands = help_text.split("Commands:", 1)[1]
    assert "..." not in commands and "audit" in commands  # descriptions are not cut
    for command in ("audit", "patch", "check", "baseline", "sql", "verify"):
        text = run_cli(command, "-h").stdout
        assert "Usage: tableshift " + command in text
        assert "\\[" not in text  # `[default: ...]`, never `\[default: ...]`
    assert "[default: text]" in run_cli("check", "-h").stdout


def test_check_text_carries_rule_codes_and_sarif_names_them(repo):
    proc = run_cli("check", "--rules", str(RULES), "--baseline", "empty-baseline.json", cwd=repo)
    assert proc.returncode == 1
    assert "src/queue.ts:2:36: TS001 legacy table 'content_metadata'" in proc.stdout
    assert "src/app/api/customers/[id]/route.ts:2:" in proc.stdout  # brackets survive
    sarif = json.loads(run_cli("check", "--rules", str(RULES), "--baseline", "empty-baseline.json", "-f", "sarif", cwd=repo).stdout)
    codes = {r["id"]: r["properties"]["code"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert codes["legacy-table"] == "TS001" and codes["dynamic-legacy-table"] == "TS002"


def test_exit_zero_reports_but_passes(repo):
    proc = run_cli("check", "--rules", str(RULES), "--baseline", "empty-baseline.json", "--exit-zero", cwd=repo)
    assert proc.returncode == 0 and "TS001" in proc.stdout


def test_colour_follows_color_flag_and_no_color(repo):
    args = ("check", "--rules", str(RULES), "--baseline", "empty-baseline.json")
    assert "\x1b[" in run_tty_env(*args, "--color", "always", cwd=repo).stdout
    assert "\x1b[" not in run_tty_env(*args, cwd=repo).stdout  # piped: plain
    assert "\x1b[" not in run_tty_env(*args, "--color=never", cwd=repo).stdout
    assert "\x1b[" not in run_tty_env(*args, cwd=repo, env={"NO_COLOR": "1"}).stdout
    bad = run_cli(*args, "--color", "sometimes", cwd=repo)
    assert bad.returncode == 2 and bad.stderr.strip() == "tableshift: error: --color sometimes: expected auto, always or never"


def test_quiet_and_verbose_anywhere_on_the_line(repo):
    loud = run_cli("patch", "--rules", str(RULES), "-o", "out.patch", cwd=repo)
    assert "wrote out.patch" in loud.stderr and "tableshift patch:" in loud.stderr
    quiet = run_cli("patch", "--rules", str(RULES), "-o", "out.patch", "-q", cwd=repo)
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = run_cli("-v", "audit", ".", "-f", "json", "-o", "audit.json", cwd=repo)
    assert "scanned 2 files in" in verbose.stderr and "may hold calls" in verbose.stderr


def test_every_output_file_is_announced_the_same_way(repo):
    for args in (
        ("audit", ".", "-f", "json", "-o", "a.json"),
        ("audit", ".", "-f", "markdown", "-o", "a.md"),
        ("check", "--rules", str(RULES), "--baseline", "empty-baseline.json", "-o", "c.txt"),
        ("patch", "--rules", str(RULES), "-o", "p.patch", "--report", "cov.md"),
    ):
        proc = run_cli(*args, cwd=repo)
        written = [a for a in args if a.endswith((".json", ".md", ".txt", ".patch")) and a != "empty-baseline.json"]
        for name in written:
            assert f"wrote {name}" in proc.stderr, (args, proc.stderr)


def test_patch_check_is_a_gate_for_everything_rewritable(repo):
    proc = run_cli("patch", "--rules", str(RULES), "--check", cwd=repo)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["would rewrite src/app/api/customers/[id]/route.ts", "would rewrite src/queue.ts"]
    assert not (repo / "src" / "queue.ts").read_text().count("content_queue")  # nothing written
    assert run_cli("patch", "--rules", str(RULES), "--apply", cwd=repo).returncode == 0
    after = run_cli("patch", "--rules", str(RULES), "--check", cwd=repo)
    assert after.returncode == 0 and after.stdout == ""
    both = run_cli("patch", "--rules", str(RULES), "--check", "--apply", cwd=repo)
    assert both.returncode == 2


def _demo_sections():
    from tableshift import engine
    from tableshift.discover import discover
    from tableshift.report.audit import build
    from tableshift.report.sections import audit_sections
    from tableshift.rules import load_rules

    rules = load_rules(RULES)
    root = Path(__file__).resolve().parent.parent / "fixtures" / "demo-app"
    result = engine.run(discover([root]), rules, options=engine.Options(jobs=1))
    return audit_sections(build(result, rules))


@pytest.mark.parametrize("width", [80, 200])
def test_terminal_tables_fit_their_width_and_keep_the_numbers(width):
    import io

    from rich.console import Console

    from tableshift.report.render import print_tables

    buffer = io.StringIO()
    print_tables(_demo_sections(), Console(file=buffer, width=width, force_terminal=True, color_system=None), title="t")
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    legacy = next(i for i, line in enumerate(lines) if line.startswith("Legacy tables"))
    header = lines[legacy + 2]
    for column in ("calls", "reads", "writes", "auto", "review"):
        assert column in header
    if width == 80:
        assert any("not shown at this width" in line for line in lines)
    else:
        assert "group" in header and "files" in header


def test_piped_tables_have_no_box_drawing_and_long_lists_are_whole():
    import io

    from rich.console import Console

    from tableshift.report.render import print_tables

    buffer = io.StringIO()
    print_tables(_demo_sections(), Console(file=buffer, width=160, force_terminal=False), title="t")
    text = buffer.getvalue()
    assert not any(ch in text for ch in "┌┏│┃─━")
    assert "... and" not in text


def test_a_terminal_cuts_long_lists_and_says_how_many_more():
    import io

    from rich.console import Console

    from tableshift.report.render import TERMINAL_ROWS, print_tables
    from tableshift.report.sections import Section

    rows = tuple((f"src/f{i}.ts:1", "table", "-", "-", "reason") for i in range(TERMINAL_ROWS + 7))
    buffer = io.StringIO()
    section = Section("Dynamic calls (table not known statically)", ("location", "kind", "candidates", "status", "reasons"), rows)
    print_tables([section], Console(file=buffer, width=120, force_terminal=True, color_system=None), title="t")
    assert "... and 7 more (use --format json)" in buffer.getvalue()


def test_init_writes_a_config_and_a_rules_skeleton_that_become_a_gate(repo):
    proc = run_cli("init", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "wrote tableshift-rules.toml: 2 tables found" in proc.stderr
    rules = (repo / "tableshift-rules.toml").read_text()
    assert '# legacy = "content_metadata"' in rules and '# legacy = "tweets"' in rules
    again = run_cli("init", cwd=repo)
    assert again.returncode == 2 and "exists" in again.stderr
    # the user uncomments one table and names its target: the config now drives the gate
    edited = rules.replace('# [[table]]\n# legacy = "tweets"\n# target = ""', '[[table]]\nlegacy = "tweets"\ntarget = "posted_content"')
    (repo / "tableshift-rules.toml").write_text(edited)
    assert run_cli("baseline", cwd=repo).returncode == 0
    assert run_cli("check", cwd=repo).returncode == 0
    (repo / "src" / "more.ts").write_text("export const more = (s: any) => s.from('tweets').select('tweet_id');\n")
    assert run_cli("check", cwd=repo).returncode == 1


def test_the_pre_commit_hook_checks_only_the_files_it_is_given(repo):
    import yaml

    [hook] = yaml.safe_load((Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text())
    assert hook["pass_filenames"] is True
    entry = hook["entry"].split()[1:]  # `check --force-exclude`
    (repo / "tableshift.toml").write_text(f'rules = "{RULES}"\nbaseline = "base.json"\nexclude = ["src/generated/"]\n')
    assert run_cli("baseline", cwd=repo).returncode == 0
    # an untracked scratch file with new legacy usage, not part of the commit
    (repo / "scratch.ts").write_text("export const x = (s: any) => s.from('tweets').select('*');\n")
    (repo / "src" / "generated").mkdir()
    (repo / "src" / "generated" / "types.ts").write_text("export const y = (s: any) => s.from('posts').select('*');\n")
    staged = ["src/queue.ts", "src/generated/types.ts"]  # what pre-commit would pass
    proc = run_cli(*entry, *staged, cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (repo / "src" / "queue.ts").write_text(APP["src/queue.ts"] + "export const again = () => supabase.from('content_metadata').select('id');\n")
    proc = run_cli(*entry, *staged, cwd=repo)
    assert proc.returncode == 1 and "src/queue.ts:3:" in proc.stdout and "scratch.ts" not in proc.stdout


def test_code_on_stdin_is_scanned_as_the_file_it_names(repo, tmp_path):
    code = APP["src/queue.ts"] + "export const more = () => supabase.from('content_metadata').select('id');\n"
    assert run_cli("baseline", ".", "--rules", str(RULES), "-o", "base.json", cwd=repo).returncode == 0
    temporary = tmp_path / "tmp"  # where the code read from stdin is put for the run
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary)}
    audit = subprocess.run(
        [sys.executable, "-m", "tableshift", "audit", "-", "--stdin-filename", "src/queue.ts", "-f", "json"],
        input=code, capture_output=True, text=True, cwd=repo, env=env,
    )  # fmt: skip
    assert list(temporary.iterdir()) == []  # removed, though the entry point skips the interpreter's teardown
    data = json.loads(audit.stdout)
    assert [c["file"] for c in data["calls"]] == ["src/queue.ts", "src/queue.ts"]
    check = subprocess.run(
        [sys.executable, "-m", "tableshift", "check", "-", "--stdin-filename=src/queue.ts", "--rules", str(RULES), "--baseline", "base.json"],
        input=code, capture_output=True, text=True, cwd=repo, env=env,
    )  # fmt: skip
    assert list(temporary.iterdir()) == []
    assert check.returncode == 1 and "src/queue.ts:3:" in check.stdout and "route.ts" not in check.stdout
    missing = subprocess.run([sys.executable, "-m", "tableshift", "audit", "-"], input=code, capture_output=True, text=True, cwd=repo)
    assert missing.returncode == 2 and "--stdin-filename" in missing.stderr


def test_split_dir_and_a_report_inside_it_on_a_fresh_directory(repo):
    proc = run_cli("patch", "--rules", str(RULES), "--split-dir", "patches", "--report", "patches/coverage.md", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert (repo / "patches" / "coverage.md").is_file() and (repo / "patches" / "content-queue.patch").is_file()
    assert "wrote patches/coverage.md" in proc.stderr


def test_group_counts_that_overlap_say_so():
    from tableshift.report.coverage import summary_lines

    report = {
        "summary": {"calls": 2, "auto": 1, "review": 0, "dynamic": 1, "rewritten": 1, "pct_auto": 50.0, "files_changed": 1},
        "groups": [
            {"group": "a", "calls": 2, "auto": 1, "review": 0, "dynamic": 1, "rewritten": 1},
            {"group": "b", "calls": 1, "auto": 0, "review": 0, "dynamic": 1, "rewritten": 0},
        ],
        "left_out": [],
        "refused_files": [],
    }
    assert any("the groups overlap" in line for line in summary_lines(report))
