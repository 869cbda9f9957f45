"""The real client as the oracle: each chain is run with @supabase/postgrest-js (npm, pinned in
tests/oracle/package.json) and a fetch that records the request; the request tableshift's model of
the same chain implies (method, filters, order, on_conflict, Prefer) must be that request.

The client is installed into tests/oracle on first use (`npm ci`): node and npm are on every
machine here, and CI reaches the npm registry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tableshift.db.statement import _OPERATOR, filter_text
from tableshift.model import Operation
from tableshift.scan import scan_source

ORACLE = Path(__file__).resolve().parent / "oracle"

# chains as real Supabase code writes them; each is both run by the client and scanned by tableshift
CHAINS = [
    "supabase.from('posts').select('id, title')",
    "supabase.from('posts').select('id').eq('status', 'queued').neq('kind', 'draft')",
    "supabase.from('posts').select('id').gt('likes', 5).gte('views', 10).lt('age', 3).lte('rank', 2)",
    "supabase.from('posts').select('id').like('title', '%cat%').ilike('body', 'dog%')",
    "supabase.from('posts').select('id').is('deleted_at', null)",
    "supabase.from('posts').select('id').eq('owner', null)",
    "supabase.from('posts').select('id').eq('flag', true).eq('n', -3)",
    "supabase.from('posts').select('id').not('deleted_at', 'is', null)",
    "supabase.from('posts').select('id').not('status', 'eq', 'gone')",
    "supabase.from('posts').select('id').filter('body', 'fts', 'cat')",
    "supabase.from('posts').select('id').textSearch('body', 'cat & dog')",
    "supabase.from('posts').select('id').match({ status: 'queued', likes: 3 })",
    "supabase.from('posts').select('id').or('likes.gt.5,status.is.null')",
    "supabase.from('posts').select('id').order('created_at')",
    "supabase.from('posts').select('id').order('created_at', { ascending: false })",
    "supabase.from('posts').select('id').order('created_at', { ascending: false, nullsFirst: true }).order('id', { nullsFirst: false })",
    "supabase.from('posts').select('id, comments(id)').eq('comments.id', 3)",
    "supabase.from('posts').select('id, comments(id)').order('id', { referencedTable: 'comments', ascending: false })",
    "supabase.from('posts').select('id, comments(id)').or('id.eq.1,id.eq.2', { referencedTable: 'comments' })",
    "supabase.from('posts').select('id', { count: 'exact', head: true }).eq('status', 'queued')",
    "supabase.from('posts').select('id', { count: 'exact' })",
    "supabase.from('posts').insert({ title: 'a', likes: 1 })",
    "supabase.from('posts').insert({ title: 'a' }).select('id')",
    "supabase.from('posts').upsert({ id: 1, title: 'a' })",
    "supabase.from('posts').upsert({ tweet_id: '1', likes: 2 }, { onConflict: 'tweet_id' })",
    "supabase.from('posts').upsert({ tweet_id: '1' }, { onConflict: 'tweet_id', ignoreDuplicates: true })",
    "supabase.from('posts').update({ title: 'b' }).eq('id', 1)",
    "supabase.from('posts').delete().eq('id', 1)",
    "supabase.from('posts').delete().in('id', [1, 2])",
    "supabase.from('posts').select('id').limit(5)",
    "supabase.from('posts').select('id').range(10, 19)",
]


@pytest.fixture(scope="session")
def client_requests(node_oracle) -> list[dict]:
    sources = [f"(supabase) => {chain}" for chain in CHAINS]
    proc = subprocess.run(["node", "request.mjs"], cwd=ORACLE, input=json.dumps(sources), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _client(request: dict) -> dict:
    """What the client sent, as the parts tableshift models."""
    query = parse_qsl(urlsplit(request["url"]).query, keep_blank_values=True)
    prefer = {p.strip() for p in request["headers"].get("prefer", "").split(",") if p.strip()}
    return {
        "method": request["method"],
        "params": sorted((k, v) for k, v in query if k not in ("select", "columns")),
        "prefer": sorted(p for p in prefer if p.startswith(("resolution=", "count="))),
    }


def _model(chain: str, language: str = "typescript") -> dict:
    """The same parts, from what tableshift's scanner reads in the chain."""
    code = f"const q = (supabase: any) => {chain};\n" if language == "typescript" else f"def q(supabase):\n    return {chain}\n"
    [call] = scan_source(code.encode(), path="x.ts" if language == "typescript" else "x.py", language=language).calls
    options = dict(call.options)
    op = call.operation
    method = {None: "GET", Operation.SELECT: "GET", Operation.INSERT: "POST", Operation.UPSERT: "POST", Operation.UPDATE: "PATCH", Operation.DELETE: "DELETE"}[op]
    if options.get("head") == "true":
        method = "HEAD"
    params: list[tuple[str, str]] = []
    orders: dict[str, list[str]] = {}
    either: dict[str, list[str]] = {}
    for c in call.columns.filter:
        key = f"{c.qualifier}.{c.name}" if c.qualifier else c.name
        scope = f"{c.qualifier}." if c.qualifier else ""
        if c.op == "order":
            orders.setdefault(f"{scope}order", []).append(f"{c.name}.{c.value}")
        elif c.op == "or":
            either.setdefault(f"{scope}or", []).append(f"{c.name}.{c.value}")
        else:  # the filter as verify reads it
            params.append((key, filter_text(c) or f"{_OPERATOR[c.op]}.?"))
    params += [(k, ",".join(v)) for k, v in orders.items()]
    params += [(k, "(" + ",".join(v) + ")") for k, v in either.items()]
    if call.columns.on_conflict:
        params.append(("on_conflict", ",".join(c.name for c in call.columns.on_conflict)))
    if "limit" in options:
        params.append(("limit", options["limit"]))
    if "range" in options:
        first, _, last = options["range"].partition(",")
        params += [("offset", first), ("limit", str(int(last) - int(first) + 1))]
    prefer = []
    if op is Operation.UPSERT:
        prefer.append("resolution=ignore-duplicates" if options.get("ignore_duplicates") == "true" else "resolution=merge-duplicates")
    if "count" in options:
        prefer.append(f"count={options['count']}")
    return {"method": method, "params": sorted(params), "prefer": sorted(prefer)}


@pytest.mark.parametrize("index", range(len(CHAINS)), ids=[c[len("supabase.from('posts')") :][:60] for c in CHAINS])
def test_the_model_of_a_chain_is_the_request_the_real_client_sends(client_requests, index):
    client = _client(client_requests[index])
    model = _model(CHAINS[index])
    # a value the code holds in a variable or an array is '?' in the model: only its place is compared
    for i, (key, value) in enumerate(model["params"]):
        if value.endswith(".?"):
            match = next((v for k, v in client["params"] if k == key and v.startswith(value[:-1])), None)
            if match is not None:
                model["params"][i] = (key, match)
    model["params"].sort()
    assert model == client


# supabase-py (its query builder is PyPI's `postgrest`, pinned in the test extra): each chain is run
# by the real builder with a transport that records the request, and scanned by tableshift
PY_CHAINS = [
    "supabase.table('posts').select('id').eq('status', 'queued').neq('kind', 'draft').execute()",
    "supabase.table('posts').select('id').eq('flag', True).eq('n', -3).gt('likes', 5).lte('rank', 2.5).execute()",
    "supabase.table('posts').select('id').eq('owner', None).execute()",
    "supabase.table('posts').select('id').is_('deleted_at', None).is_('ok', True).execute()",
    "supabase.table('posts').select('id').like('title', '%cat%').ilike('body', 'dog%').execute()",
    "supabase.table('posts').select('id').in_('id', [1, 2, 3]).execute()",
    "supabase.table('posts').select('id').in_('label', ['a,b', 'c', 'say \"hi\"']).execute()",
    "supabase.table('posts').select('id').filter('likes', 'gt', 5).execute()",
    "supabase.table('posts').select('id').match({'status': 'queued', 'likes': 3}).execute()",
    "supabase.table('posts').select('id').or_('likes.gt.5,status.is.null').execute()",
    "supabase.table('posts').insert({'title': 'a', 'likes': 1}).execute()",
    "supabase.table('posts').upsert({'tweet_id': '1', 'likes': 2}, on_conflict='tweet_id').execute()",
    "supabase.table('posts').update({'title': 'b'}).eq('id', 1).execute()",
    "supabase.table('posts').delete().eq('id', 1).execute()",
]


def _py_client(chain: str) -> dict:
    import httpx
    from postgrest import SyncPostgrestClient

    seen: dict = {}

    def record(request: httpx.Request) -> httpx.Response:
        seen.update(method=request.method, url=str(request.url), headers=dict(request.headers))
        return httpx.Response(200, json=[], headers={"content-type": "application/json"})

    client = SyncPostgrestClient("http://db.invalid/rest/v1", http_client=httpx.Client(transport=httpx.MockTransport(record)))
    eval(chain, {"supabase": client})  # noqa: S307 - the chains are this file's own
    return _client(seen)


@pytest.mark.parametrize("index", range(len(PY_CHAINS)), ids=[c[len("supabase.table('posts')") :][:60] for c in PY_CHAINS])
def test_the_model_of_a_python_chain_is_the_request_supabase_py_sends(index):
    client = _py_client(PY_CHAINS[index])
    model = _model(PY_CHAINS[index], language="python")
    assert model == client
