"""What tableshift writes, and where, when its surroundings are hostile: devices, links, races, signals.

Each test is a probe from the trust review that failed before its fix. Inputs are generated here,
never committed as megabytes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, RULES
from helpers import run_cli
from tableshift import fsutil

DEMO = FIXTURES / "demo-app"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def demo(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(DEMO, repo, ignore=shutil.ignore_patterns("expected", "expect.toml"))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    return repo


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("tableshift: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


# -- output targets ------------------------------------------------------------


def test_output_to_a_fifo_is_written_in_place(demo):
    fifo = demo / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    proc = run_cli("audit", "-f", "json", "-o", str(fifo), "--no-cache", cwd=demo)
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(got[0])["schema_version"] == 1


def test_output_through_a_link_to_a_device_writes_the_device(demo):
    link = demo / "null.json"
    link.symlink_to("/dev/null")
    proc = run_cli("audit", "-f", "json", "-o", str(link), "--no-cache", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_through_a_link_inside_the_repository_keeps_the_link(demo):
    (demo / "reports").mkdir()
    real = demo / "reports" / "audit.json"
    real.write_text("old")
    link = demo / "audit.json"
    link.symlink_to("reports/audit.json")
    proc = run_cli("audit", "-f", "json", "-o", "audit.json", "--no-cache", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert json.loads(real.read_text())["schema_version"] == 1


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_a_link_out_of_the_repository_is_refused(demo, tmp_path, flag):
    outside = tmp_path / "outside.md"
    outside.write_text("keep me")
    link = demo / "out.md"
    link.symlink_to(outside)
    args = ("patch", "--rules", str(RULES), flag, "out.md") if flag == "--report" else ("audit", "-f", "markdown", "-o", "out.md")
    message = _one_line_error(run_cli(*args, "--no-cache", cwd=demo))
    assert "outside the repository: refusing to write through it" in message
    assert outside.read_text() == "keep me" and link.is_symlink()


def test_split_dir_never_writes_through_a_planted_link(demo, tmp_path):
    outside = tmp_path / "outside.patch"
    outside.write_text("keep me")
    (demo / "patches").mkdir()
    (demo / "patches" / "engagement.patch").symlink_to(outside)
    proc = run_cli("patch", "--rules", str(RULES), "--split-dir", "patches", "--no-cache", cwd=demo)
    assert proc.returncode == 2 and "refusing to write through it" in proc.stderr
    assert outside.read_text() == "keep me"


# -- bytes that are not UTF-8 --------------------------------------------------


def test_undecodable_bytes_in_calls_reach_every_output_and_match_the_baseline_again(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.ts").write_bytes(
        b"const a = await supabase.from('tw\xffeets').select('id').eq('body', '\xff\xfe');\n"
        b"const b = await supabase.from('tweets').select('id').eq('body', 'caf\xe9');\n"
    )
    audit = run_cli("audit", "-f", "json", "--rules", str(RULES), "--no-cache", cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr
    calls = json.loads(audit.stdout)["calls"]
    assert "tw\ufffdeets" in {c["table"] for c in calls}
    assert run_cli("baseline", "--rules", str(RULES), "--no-cache", cwd=tmp_path).returncode == 0
    assert "caf\ufffd" in (tmp_path / "tableshift-baseline.json").read_text(encoding="utf-8")
    sarif = run_cli("check", "--rules", str(RULES), "-f", "sarif", "--no-cache", cwd=tmp_path)
    assert sarif.returncode == 0, sarif.stderr
    json.loads(sarif.stdout)
    text = run_cli("check", "--rules", str(RULES), "--no-cache", cwd=tmp_path)
    assert text.returncode == 0 and "passed" in text.stdout


# -- the gate fails closed ------------------------------------------------------


@pytest.fixture
def gated(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/ok.ts").write_text("export const ok = () => supabase.from('content_queue').select('id');\n")
    (tmp_path / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\npaths = ["src"]\n')
    _git(tmp_path, "init", "-q")
    assert run_cli("baseline", cwd=tmp_path).returncode == 0
    return tmp_path


def test_a_call_after_a_very_long_comment_line_is_checked(gated):
    (gated / "src/long.ts").write_text("// " + "x" * 25_000 + "\nexport const f = () => supabase.from('tweets').select('id');\n")
    for extra in ((), ("--strict",), ("--max-file-size", "100000000")):
        proc = run_cli("check", *extra, "--no-cache", cwd=gated)
        assert proc.returncode == 1, proc.stdout
        assert "src/long.ts:2:" in proc.stdout and "legacy table 'tweets'" in proc.stdout


def test_a_minified_file_that_mentions_a_call_fails_the_gate_unless_excluded(gated):
    minified = ";".join(f"var a{i}=supabase.from('tweets').select('id')" for i in range(1_000)) + "\n"
    (gated / "src/bundle.js").write_text(minified)
    proc = run_cli("check", "--no-cache", cwd=gated)
    assert proc.returncode == 1
    assert "src/bundle.js: TS004 error: not checked (minified or generated" in proc.stdout
    scanned = run_cli("check", "--no-skip-minified", "--no-cache", cwd=gated)
    assert scanned.returncode == 1 and "src/bundle.js:1:" in scanned.stdout
    (gated / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\npaths = ["src"]\nexclude = ["src/bundle.js"]\n')
    assert run_cli("check", "--no-cache", cwd=gated).returncode == 0


def test_a_file_too_large_to_scan_that_mentions_a_call_fails_the_gate(gated):
    (gated / "src/big.ts").write_text("export const f = () => supabase.from('content_queue').select('id');\n" * 50)
    proc = run_cli("check", "--max-file-size", "1000", "--no-cache", cwd=gated)
    assert proc.returncode == 1
    assert "src/big.ts: TS004 error: not checked (larger than 1,000 bytes" in proc.stdout
    sarif = json.loads(run_cli("check", "--max-file-size", "1000", "-f", "sarif", "--no-cache", cwd=gated).stdout)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["unchecked-file"]


def test_a_large_file_without_candidates_is_listed_but_passes(gated):
    (gated / "src/data.ts").write_text("export const rows = [" + "1, " * 1000 + "];\n")
    proc = run_cli("check", "--max-file-size", "1000", "--no-cache", cwd=gated)
    assert proc.returncode == 0, proc.stdout
    assert "src/data.ts: not checked: larger than 1,000 bytes" in proc.stdout


# -- --apply: races, owners, links ---------------------------------------------


def test_concurrent_applies_of_three_groups_lose_no_update(demo):
    groups = ["content-queue", "posted-content", "engagement"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tableshift", "patch", "--rules", str(RULES), "--group", g, "--apply", "--no-cache"],
            cwd=demo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for g in groups
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    claimed: dict[str, set[str]] = {g: {line.split(" ", 1)[1] for line in err.splitlines() if line.startswith("rewrote ")} for g, (_, err) in zip(groups, outputs)}
    assert any(claimed.values())
    for group in groups:
        left = run_cli("patch", "--rules", str(RULES), "--group", group, "--report", "cov.json", "--no-cache", cwd=demo)
        assert left.returncode == 0, left.stderr
        # every file a run said it rewrote holds that run's change: no auto call of its group is left there
        remaining = run_cli("patch", "--rules", str(RULES), "--group", group, "--no-cache", cwd=demo).stdout
        for path in claimed[group]:
            assert f"a/{path} " not in remaining, (group, path)


def test_apply_keeps_owner_group_and_mode(demo):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = demo / "src/jobs/postingQueue.ts"
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o640)
    before = path.read_bytes()
    proc = run_cli("patch", "--rules", str(RULES), "--apply", "--no-cache", cwd=demo)
    assert path.read_bytes() != before, proc.stderr
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)


def test_apply_skips_a_hard_linked_file_and_keeps_its_twin(demo, tmp_path):
    path = demo / "src/jobs/postingQueue.ts"
    twin = tmp_path / "twin.ts"
    os.link(path, twin)
    before = path.read_bytes()
    proc = run_cli("patch", "--rules", str(RULES), "--apply", "--no-cache", cwd=demo)
    assert proc.returncode == 1
    assert "skipped src/jobs/postingQueue.ts: has 2 hard links" in proc.stderr
    assert path.read_bytes() == before and os.path.samefile(path, twin)


def test_apply_summary_counts_what_was_written(demo):
    planned = run_cli("patch", "--rules", str(RULES), "--no-cache", cwd=demo).stderr.splitlines()[0]
    (demo / "src/jobs").chmod(0o555)
    for path in (demo / "src/jobs").iterdir():
        path.chmod(0o444)
    try:
        proc = run_cli("patch", "--rules", str(RULES), "--apply", "--report", "cov.json", "--no-cache", cwd=demo)
    finally:
        (demo / "src/jobs").chmod(0o755)
    assert proc.returncode == 1
    written = sum(1 for line in proc.stderr.splitlines() if line.startswith("rewrote "))
    summary = next(line for line in proc.stderr.splitlines() if line.startswith("tableshift patch:"))
    assert summary != planned
    assert summary.endswith(f"in {written} files")
    report = json.loads((demo / "cov.json").read_text())
    assert report["summary"]["files_changed"] == written
    assert {r["file"] for r in report["refused_files"]} >= {"src/jobs/postingQueue.ts"}


def test_a_killed_runs_temporary_files_are_swept(demo):
    stale = demo / "src/jobs/.postingQueue.ts.tableshift-999999999-abc.tmp"
    stale.write_text("half")
    live = demo / f"src/jobs/.planJob.ts.tableshift-{os.getpid()}-abc.tmp"
    live.write_text("another run's")
    proc = run_cli("patch", "--rules", str(RULES), "--apply", "--no-cache", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and live.exists()


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(KeyboardInterrupt):
        with fsutil.atomic_writer(target) as handle:
            handle.write(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


# -- the cache -------------------------------------------------------------------


@pytest.mark.parametrize("planted", [".tableshift-cache", ".tableshift-cache/cache.sqlite", ".tableshift-cache/.gitignore"])
def test_a_planted_cache_link_is_refused(demo, tmp_path, planted):
    outside = tmp_path / "x"
    outside.mkdir()
    if planted == ".tableshift-cache":
        (demo / planted).symlink_to(outside)
    else:
        (demo / ".tableshift-cache").mkdir()
        (demo / planted).symlink_to(outside / "victim")
    message = _one_line_error(run_cli("audit", cwd=demo))
    assert "is a symbolic link: refusing to follow it" in message
    assert list(outside.iterdir()) == []


# -- rules that point elsewhere ---------------------------------------------------


@pytest.mark.parametrize("schema", ["/etc/shadow", "/etc/passwd.sql", "../outside.sql"])
def test_a_schema_outside_the_repository_is_refused(demo, tmp_path, schema):
    (tmp_path / "outside.sql").write_text("CREATE TABLE t (id int);")
    (demo / "rules.toml").write_text(f"schema = '{schema}'\n[[table]]\nlegacy = 'tweets'\ntarget = 't'\n")
    message = _one_line_error(run_cli("patch", "--rules", "rules.toml", cwd=demo))
    assert "rules.toml: schema:" in message


def test_a_schema_error_never_quotes_the_file(demo):
    (demo / "token.sql").write_text("ghp_SECRETTOKEN123 is not sql\n")
    (demo / "rules.toml").write_text("schema = 'token.sql'\n[[table]]\nlegacy = 'tweets'\ntarget = 't'\n")
    message = _one_line_error(run_cli("patch", "--rules", "rules.toml", cwd=demo))
    assert "token.sql:1:1: SQL syntax error" in message
    assert "SECRET" not in message


# -- malformed inputs end in exit 2, one line -------------------------------------


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, '{"tool": "tableshift", "schema_version": 1, "rules": "content-consolidation", "files": {"a": {"tweets": {"allowed": ' + "9" * 5001 + "}}}}"],
)
def test_a_malformed_baseline_is_one_line(gated, body):
    (gated / "tableshift-baseline.json").write_text(body)
    assert "corrupt baseline" in _one_line_error(run_cli("check", "--no-cache", cwd=gated))


def test_a_deep_config_file_is_one_line(gated):
    (gated / "tableshift.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "invalid TOML" in _one_line_error(run_cli("check", cwd=gated))


# -- signals, pipes, workers ----------------------------------------------------------


def test_a_closed_pipe_ends_the_run_quietly(demo):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tableshift", "audit", "-f", "json", "--no-cache"], cwd=demo, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == -signal.SIGPIPE
    assert err == b""


@pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_ends_the_run_with_one_line(demo, sig, status, word):
    fifo = demo / "out.fifo"
    os.mkfifo(fifo)  # nobody reads it: the run waits there until the signal comes
    proc = subprocess.Popen(
        [sys.executable, "-m", "tableshift", "audit", "-f", "json", "-o", str(fifo), "--no-cache"],
        cwd=demo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert err == f"tableshift: {word}\n"


def test_more_jobs_than_files_start_no_more_workers_than_work(tmp_path):
    for i in range(20):
        (tmp_path / f"f{i}.ts").write_text(f"export const f{i} = () => supabase.from('t{i}').select('id');\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tableshift", "audit", "--jobs", "100000", "--no-cache", "-f", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["calls"]) == 20


def test_a_worker_that_dies_costs_only_its_file(tmp_path, monkeypatch):
    from tableshift import engine
    from tableshift.discover import discover

    for i in range(40):
        (tmp_path / f"f{i}.ts").write_text(f"export const f{i} = () => supabase.from('t{i}').select('id');\n")
    real = engine.scan_file

    def crashing(source, rules, **options):  # type: ignore[no-untyped-def]
        if source.path.name == "f7.ts":
            os._exit(139)  # what a native stack overflow in a parser looks like from outside
        return real(source, rules, **options)

    monkeypatch.setattr(engine, "scan_file", crashing)  # forked workers inherit it
    monkeypatch.chdir(tmp_path)
    result = engine.run(discover(["."]), None, options=engine.Options(jobs=2))
    by_path = {f.path: f for f in result.files}
    assert by_path["f7.ts"].error == "the parser crashed on this file"
    assert sum(len(f.calls) for f in result.files) == 39


# -- human formats never pass raw controls ------------------------------------------


def test_hostile_file_names_are_escaped_in_every_human_format(demo):
    name = "src/evil\n`$(x)\x1b[31m[id].ts"
    (demo / name).write_text(
        "export const f = (t: string) => supabase.from(t).select('id').eq('x', 1);\n"
        "export const g = () => supabase.from('content_metadata').select('*');\n"
    )
    shown = "src/evil\\n`$(x)\\x1b[31m[id].ts"
    table = run_cli("audit", "--rules", str(RULES), "--no-cache", cwd=demo)
    markdown = run_cli("audit", "--rules", str(RULES), "-f", "markdown", "--no-cache", cwd=demo)
    patch = run_cli("patch", "--rules", str(RULES), "--report", "cov.md", "--no-cache", cwd=demo)
    cov = (demo / "cov.md").read_text()
    for out in (table.stdout, markdown.stdout, patch.stderr, cov):
        assert "\x1b" not in out and "\nsrc/evil" not in out
    assert f"{shown}:1" in table.stdout  # rich markup did not eat `[31m]` or `[id]`
    assert f"``{shown}:2``" in cov


@pytest.mark.parametrize("key", ["rules", "baseline"])
def test_an_input_that_is_a_device_is_refused_not_read_forever(gated, key):
    rules = "/dev/zero" if key == "rules" else RULES.as_posix()
    (gated / "tableshift.toml").write_text(f'rules = "{rules}"\npaths = ["src"]\n' + ('baseline = "/dev/zero"\n' if key == "baseline" else ""))
    proc = subprocess.run([sys.executable, "-m", "tableshift", "check", "--no-cache"], cwd=gated, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "/dev/zero: is not a regular file: refusing to read it" in proc.stderr


def test_a_config_that_is_a_fifo_is_refused(gated):
    os.mkfifo(gated / "cfg.toml")
    proc = subprocess.run([sys.executable, "-m", "tableshift", "check", "--config", "cfg.toml"], cwd=gated, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not a regular file" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "-f", "markdown", "-o", "outl/a.md"),
        ("patch", "--rules", str(RULES), "--report", "outl/cov.md"),
        ("baseline", "--rules", str(RULES), "-o", "outl/b.json"),
        ("patch", "--rules", str(RULES), "--split-dir", "outl/sub"),
    ],
)
def test_a_symlinked_folder_on_the_way_out_of_the_repository_is_refused(demo, tmp_path, args):
    outside = tmp_path / "outside"
    outside.mkdir()
    (demo / "outl").symlink_to(outside)
    proc = run_cli(*args, "--no-cache", cwd=demo)
    assert proc.returncode == 2 and "refusing to write through it" in proc.stderr, proc.stderr
    assert list(outside.iterdir()) == []


def test_output_to_dev_stdout_through_a_pipe_is_written_in_place(demo):
    proc = run_cli("audit", "-f", "json", "-o", "/dev/stdout", "--no-cache", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["schema_version"] == 1


def _tree(root: Path, files: int) -> None:
    for i in range(files):
        (root / f"f{i}.ts").write_text(f"export const f{i} = () => supabase.from('t{i % 7}').select('id').eq('a', {i});\n" * 20)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_process_group_never_hangs(tmp_path, sig):
    _tree(tmp_path, 600)
    for delay in (0.4, 0.8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tableshift", "audit", ".", "--no-cache", "-o", "/dev/null", "--jobs", "8"],
            cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(delay)
        os.killpg(proc.pid, sig)  # as Ctrl-C, `timeout` and a CI cancel do
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, 128 + sig), err.decode(errors="replace")
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-f", "tableshift audit . --no-cache -o /dev/null --jobs 8"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "a worker outlived its run"


def test_absurd_job_counts_start_a_sane_number_of_workers(tmp_path):
    _tree(tmp_path, 300)
    for jobs in ("100000", "99999999999999999999"):
        proc = subprocess.run(
            [sys.executable, "-m", "tableshift", "audit", ".", "--no-cache", "-f", "json", "--jobs", jobs],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["summary"]["files_scanned"] == 300


def test_file_names_with_markup_are_inert_in_the_markdown_audit(tmp_path):
    for name in ("<img src=x onerror=alert(1)>.ts", "star*_x_*.ts"):
        (tmp_path / name).write_text("export const f = (t: string) => supabase.from(t).select('id');\n")
    out = run_cli("audit", "-f", "markdown", "--no-cache", cwd=tmp_path).stdout
    assert out.count("<img") == out.count("\\<img") > 0 and "\\<img src=x onerror=alert(1)\\>.ts" in out
    assert "star\\*\\_x\\_\\*.ts" in out
