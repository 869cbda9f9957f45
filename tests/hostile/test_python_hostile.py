"""The Python scanner on hostile shapes: nesting that overflows LibCST's native stack, very long chains."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from helpers import run_cli

from tableshift.model import Operation
from tableshift.scan import scan_source
from tableshift.scan.python_fallback import MAX_DEPTH, nesting

# A child process runs what could crash: a native stack overflow would kill pytest itself.
_CHILD = """
import json, sys, threading
from tableshift.scan import error_count, scan_source
data = sys.stdin.buffer.read()
def run():
    r = scan_source(data, path="x.py", language="python")
    print(json.dumps({"parse_error": r.parse_error, "error": r.error, "errors": error_count(data, "python"),
                      "calls": [[c.table.name if c.table else c.name, c.in_error_region, len(c.columns.filter)] for c in r.calls]}))
if len(sys.argv) > 1:  # a thread with a small stack, as a host application may give
    threading.stack_size(int(sys.argv[1]))
    t = threading.Thread(target=run); t.start(); t.join()
else:
    run()
"""


def _in_child(source: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], input=source.encode(), capture_output=True, timeout=120
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode()[-2000:])
    return json.loads(proc.stdout)


def _eq_arg(arg: str) -> str:
    return f"x = supabase.table('t').select('id').eq('a', {arg}).execute()\n"


def _chain(links: int) -> str:
    return "x = (supabase.table('t').select('id')\n" + "    .eq('a', 1)\n" * links + "    .execute())\n"


def _largest(make) -> int:  # type: ignore[no-untyped-def]
    """The largest n for which make(n) is still LibCST's to parse."""
    one, two = (nesting(make(n).encode()).depth for n in (1, 2))
    n = (MAX_DEPTH - one) // (two - one) + 1
    assert nesting(make(n).encode()).depth <= MAX_DEPTH < nesting(make(n + 1).encode()).depth
    return n


def _parens(n: int) -> str:
    return _eq_arg("(" * n + "1" + ")" * n)


def test_two_thousand_nested_parentheses_are_a_parse_error_not_a_crash():
    out = _in_child(_eq_arg("(" * 2_000 + "1" + ")" * 2_000))
    assert out["parse_error"] and out["error"] is None and out["errors"] >= 1
    assert out["calls"] == [["t", True, 1]]


def test_a_hundred_thousand_mixed_brackets_are_read_by_the_fallback():
    out = _in_child(_eq_arg("[{(" * 33_000 + "1" + ")}]" * 33_000))
    assert out["parse_error"] and out["calls"] == [["t", True, 1]]


def test_nesting_hidden_behind_reused_f_string_quotes_is_seen():
    # PEP 701: `"a"` inside `f"{...}"` does not end the f-string, so the brackets after it are code
    out = _in_child(_eq_arg('f"{ "a" + ' + "(" * 5_000 + "1" + ")" * 5_000 + ' }"'))
    assert out["parse_error"] and out["calls"] == [["t", True, 1]]


def test_libcst_gets_a_deep_stack_even_from_a_thread_with_a_small_one():
    # the deepest nesting LibCST is given (~120 levels) overflows a 256 KiB stack: ~40 do
    levels = _largest(_parens)
    assert levels > 100
    out = _in_child(_parens(levels), str(256 * 1024))
    assert not out["parse_error"] and out["calls"] == [["t", False, 1]]


def test_a_chain_just_under_the_limit_is_read_by_libcst_past_the_recursion_limit():
    links = _largest(_chain)
    assert links > 200  # 5 Python frames a link: far past the default recursion limit of 1,000
    result = scan_source(_chain(links).encode(), path="x.py", language="python")
    assert result.error is None and not result.parse_error
    (call,) = result.calls
    assert (call.operation, len(call.columns.filter)) == (Operation.SELECT, links)


def test_long_chains_are_scanned_in_linear_time():
    def seconds(links: int) -> float:
        start = time.perf_counter()
        result = scan_source(_chain(links).encode(), path="x.py", language="python")
        elapsed = time.perf_counter() - start
        (call,) = result.calls
        assert result.parse_error and call.in_error_region and len(call.columns.filter) == links
        assert call.end.line == links + 2
        return elapsed

    seconds(1_000)  # warm up: the grammar loads once
    small, large = seconds(2_000), seconds(8_000)
    assert large < 10 * small + 0.5  # 4x the links: 4x the time, not 16x
    assert large < 10


def test_many_query_calls_in_one_chain_cost_linear_time():
    def seconds(calls: int) -> float:
        start = time.perf_counter()
        result = scan_source(("x = (sb\n" + "  .rpc('f')\n" * calls + "  .execute())\n").encode(), path="x.py", language="python")
        assert len(result.calls) == calls
        return time.perf_counter() - start

    small, large = seconds(500), seconds(2_000)
    assert large < 10 * small + 0.5


def test_a_worker_pool_lists_the_deep_file_and_goes_on(tmp_path):
    for i in range(20):  # enough files for the process pool
        (tmp_path / f"ok{i}.py").write_text("supabase.table('posts').select('id').execute()\n")
    (tmp_path / "deep.py").write_text(_eq_arg("(" * 2_000 + "1" + ")" * 2_000))
    proc = run_cli("audit", "-f", "json", "--no-cache", "-j", "2", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [f.rsplit("/", 1)[-1] for f in report["files"]["parse_errors"]] == ["deep.py"]
    flagged = {c["file"].rsplit("/", 1)[-1]: c["in_error_region"] for c in report["calls"]}
    assert len(flagged) == 21 and flagged["deep.py"] is True and flagged["ok0.py"] is False



def test_a_forked_worker_parses_with_its_own_deep_stack_thread():
    # the thread that runs LibCST does not survive fork(): a child waiting for it would hang
    probe = """
import os, signal, sys
from tableshift.scan import scan_source
data = b"supabase.table('posts').select('id').execute()\\n"
assert not scan_source(data, path="x.py", language="python").parse_error
pid = os.fork()
if pid == 0:
    signal.alarm(30)  # a hung child must not outlive the test
    os._exit(0 if len(scan_source(data, path="x.py", language="python").calls) == 1 else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
