"""The command line as users run it: exit statuses, one-line errors, output files and formats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import FIXTURES, RULES
from helpers import run_cli

SAMPLE = """import { supabase } from './db';
export async function load() {
  const { data, error } = await supabase.from('tweets').select('id, likes_count').eq('status', 'posted');
  if (error) throw error;
  return Array.from(data ?? []);
}
"""


def _project(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "load.ts").write_text(SAMPLE)
    return tmp_path


def test_audit_json_to_stdout(tmp_path):
    proc = run_cli("audit", "--format", "json", "--rules", str(RULES), cwd=_project(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1
    assert report["summary"]["calls"] == 1
    [call] = report["calls"]
    assert (call["file"], call["line"], call["table"], call["status"], call["target"]) == (
        "src/load.ts",
        3,
        "tweets",
        "legacy",
        "posted_content",
    )


def test_audit_output_file_markdown(tmp_path):
    project = _project(tmp_path)
    proc = run_cli("audit", "src", "-f", "markdown", "-o", "report.md", "--rules", str(RULES), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = (project / "report.md").read_text()
    assert text.startswith("# tableshift audit")
    assert "| tweets | posted_content |" in text


def test_audit_table_format_names_the_legacy_table(tmp_path):
    proc = run_cli("audit", "--rules", str(RULES), cwd=_project(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "tweets" in proc.stdout and "posted_content" in proc.stdout


def _one_line_error(proc):
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_path_is_exit_2_one_line(tmp_path):
    line = _one_line_error(run_cli("audit", "does-not-exist", cwd=tmp_path))
    assert line == "tableshift: error: does-not-exist: no such file or directory"


def test_bad_rules_file_is_exit_2_one_line(tmp_path):
    project = _project(tmp_path)
    (project / "bad.toml").write_text("[[table]]\nlegacy = 'tweets'\ntarget = 'tweets'\n")
    line = _one_line_error(run_cli("audit", "--rules", "bad.toml", cwd=project))
    assert "bad.toml: table[1].target: target is the same table as legacy 'tweets'" in line


def test_missing_rules_file_is_exit_2(tmp_path):
    line = _one_line_error(run_cli("audit", "--rules", "nope.toml", cwd=_project(tmp_path)))
    assert "nope.toml: rules file not found" in line


def test_unknown_format_is_a_usage_error(tmp_path):
    proc = run_cli("audit", "--format", "xml", cwd=_project(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("tableshift ")
    help_text = run_cli("audit", "--help").stdout
    for flag in ("--rules", "--format", "--output", "--include", "--exclude"):
        assert flag in help_text


def test_an_output_into_a_missing_folder_makes_the_folder(tmp_path):
    out = tmp_path / "reports" / "2026" / "audit.json"
    proc = run_cli("audit", str(FIXTURES / "demo-app"), "--format", "json", "--no-cache", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["summary"]["files_scanned"] > 0
    blocked = tmp_path / "file.txt"
    blocked.write_text("x")
    proc = run_cli("audit", str(FIXTURES / "demo-app"), "--no-cache", "-o", str(blocked / "audit.txt"))
    assert proc.returncode == 2 and "Not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_init_writes_the_ci_workflow_and_pre_commit_config_pinned_to_where_tableshift_came_from(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ts").write_text("export const q = () => supabase.from('tweets').select('id');\n")
    proc = run_cli("init", "src", "--ci", "github", "--pre-commit", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    workflow = (tmp_path / ".github" / "workflows" / "tableshift.yml").read_text()
    assert "tableshift check --format github" in workflow and 'pip install "tableshift @ git+' in workflow
    hooks = (tmp_path / ".pre-commit-config.yaml").read_text()
    assert "id: tableshift-check" in hooks
    # this copy is an editable install: nothing says which commit, and the user is told to fill it in
    assert "EDIT:" in workflow and "not installed from git" in proc.stderr
    again = run_cli("init", "src", "--pre-commit", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr


def test_a_git_install_is_pinned_to_its_commit(monkeypatch):
    from tableshift import scaffold

    source = scaffold.Source("https://github.com/acme/tableshift", "0123456789abcdef0123456789abcdef01234567")
    assert 'pip install "tableshift @ git+https://github.com/acme/tableshift@0123456789abcdef0123456789abcdef01234567"' in scaffold.github_workflow(source)
    assert "rev: 0123456789abcdef0123456789abcdef01234567" in scaffold.pre_commit(source)
    assert "EDIT" not in scaffold.pre_commit(source)


def test_only_the_command_invoked_is_built(monkeypatch):
    from tableshift import cli

    commands = cli.app.registered_commands
    names = lambda found: [c.name or c.callback.__name__ for c in found]  # noqa: E731
    assert names(cli._invoked(commands, ["audit", "."])) == ["audit"]
    for args in ([], ["--version"], ["audti"], ["."]):
        assert cli._invoked(commands, args) == commands
    monkeypatch.setenv("_TABLESHIFT_COMPLETE", "bash_complete")  # completion may list every command
    assert cli._invoked(commands, ["audit"]) == commands


def test_the_entry_point_leaves_without_teardown_only_when_nothing_is_left(monkeypatch):
    """`entry` exits with main's status through os._exit once stdout and stderr are flushed;
    when something is left for Python's own exit to finish, it leaves that to it."""
    from tableshift import cli

    left: list[int] = []

    class Left(Exception):
        pass

    def exit_now(status: int) -> None:
        left.append(status)
        raise Left

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    monkeypatch.setattr(cli, "main", lambda: sys.exit(1))
    monkeypatch.setattr(cli, "_nothing_left", lambda: True)
    with pytest.raises(Left):
        cli.entry()
    assert left == [1]
    monkeypatch.setattr(cli, "_nothing_left", lambda: False)
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == 1 and left == [1]


def test_nothing_is_left_without_a_thread_a_child_or_a_database():
    """In a fresh interpreter (this one has run the database tests): a thread still running, or
    a database module loaded, is something left for Python's own exit."""
    import subprocess

    code = """
import sys, threading
from tableshift.cli import _nothing_left
print(_nothing_left())
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
print(_nothing_left())
stop.set()
thread.join()
print(_nothing_left())
sys.modules["psycopg"] = object()
print(_nothing_left())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "True", "False"]


def test_only_the_command_turns_the_cycle_collector_off():
    """The command's entry point turns it off before its imports; a library user's import does not."""
    probe = "import gc, sys; import tableshift.{}; sys.stdout.write(str(gc.isenabled()))"
    imported = subprocess.run([sys.executable, "-c", probe.format("cli")], capture_output=True, text=True)
    launched = subprocess.run([sys.executable, "-c", probe.format("_launch")], capture_output=True, text=True)
    assert (imported.stdout, launched.stdout) == ("True", "False")


def test_ctrl_c_while_the_command_line_loads_is_one_line():
    """An interrupt before `main` can take it (while the command line is imported) says so in one
    line, as `main` does, with 130."""
    probe = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'tableshift.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['tableshift', 'audit', '.']\n"
        "import tableshift._launch\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (130, "tableshift: interrupted\n")
