"""End to end on a real Supabase app's own migrations folder: the four phases of `tableshift sql`
applied to a real PostgreSQL with rows, while old code (the legacy tables) and new code (the
targets) both write as signed-in users; every guarantee checked before and after.

    python bench/chatbot_ui_db.py --repo PATH   # a checkout of mckaywrigley/chatbot-ui

Pinned in bench/codebases.toml (its supabase/migrations folder: 25 files, 1,900 lines).
The consolidation: `files` renamed to `documents` (file_path -> path), and the three junction
tables `chat_files`, `collection_files`, `assistant_files` merged into `file_links` (a `kind`
column). It exercises row-level security (own rows, shared rows, policies of other tables that
read `files`), grants from Supabase's default privileges, foreign keys other tables hold
(`file_items`, `file_workspaces`), triggers (an updated_at toucher, a PL/pgSQL trigger reading a
renamed column), realtime and a SQL function reading `files` by name. Exits 1 on the first
guarantee that differs. Nothing of the app is copied here: only its table and column names.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from tableshift.db import load, server

TARGET = """CREATE TABLE documents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  folder_id uuid REFERENCES folders(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz,
  sharing text NOT NULL DEFAULT 'private',
  description text NOT NULL,
  path text NOT NULL,
  name text NOT NULL,
  size int NOT NULL,
  tokens int NOT NULL,
  type text NOT NULL
);
CREATE TABLE file_links (
  user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  kind text NOT NULL,
  owner_id uuid NOT NULL,
  file_id uuid NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz,
  PRIMARY KEY (owner_id, file_id, kind)
);
"""
RULES = """version = 1
name = "chatbot-files"
schema = "target.sql"
[[table]]
legacy = "files"
target = "documents"
[table.renames]
file_path = "path"
[[table]]
legacy = "chat_files"
target = "file_links"
key = ["chat_id", "file_id"]
[table.renames]
chat_id = "owner_id"
[table.where]
kind = "chat"
[[table]]
legacy = "collection_files"
target = "file_links"
key = ["collection_id", "file_id"]
[table.renames]
collection_id = "owner_id"
[table.where]
kind = "collection"
[[table]]
legacy = "assistant_files"
target = "file_links"
key = ["assistant_id", "file_id"]
[table.renames]
assistant_id = "owner_id"
[table.where]
kind = "assistant"
"""
U1, U2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
FILE = "INSERT INTO {t} (id, user_id, description, {p}, name, size, tokens, type, sharing) VALUES ('{id}', '{u}', 'd', 'p/{id}', '{n}', 1, 1, 'pdf', '{s}')"
F = [f"f0000000-0000-0000-0000-00000000000{i}" for i in range(10)]
CHAT = {U1: "11111111-0000-0000-0000-0000000000ca", U2: "22222222-0000-0000-0000-0000000000cb"}
COLLECTION = {U1: "11111111-0000-0000-0000-0000000000da", U2: "22222222-0000-0000-0000-0000000000db"}
failures: list[str] = []


def check(what: str, got: object, expected: object) -> None:
    ok = got == expected
    print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": {got!r} != {expected!r}"))
    if not ok:
        failures.append(what)


def run(url: str, text: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(text)
        rows: list[tuple] = []
        while True:
            if cur.description is not None:
                rows = cur.fetchall()
            if not cur.nextset():
                return rows


def as_user(url: str, user: str, text: str, *, write: bool = False) -> list[tuple]:
    """As PostgREST runs a signed-in user's request: role authenticated, the JWT's claims set."""
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": user, "role": "authenticated"}),))
        cur = conn.execute(text)
        rows = cur.fetchall() if cur.description else []
        conn.commit() if write else conn.rollback()
        return rows


def world(url: str) -> dict:
    """What each user can read through the legacy names (the old code's view of the world)."""
    return {
        user: {
            "files": as_user(url, user, "SELECT id::text, name FROM files ORDER BY 1"),
            "items": as_user(url, user, "SELECT i.content, f.name FROM file_items i JOIN files f ON f.id = i.file_id ORDER BY 1"),
            "chat_files": as_user(url, user, "SELECT chat_id::text, file_id::text FROM chat_files ORDER BY 1, 2"),
            "collection_files": as_user(url, user, "SELECT collection_id::text, file_id::text FROM collection_files ORDER BY 1, 2"),
        }
        for user in (U1, U2)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="a checkout of mckaywrigley/chatbot-ui")
    args = parser.parse_args()
    migrations = args.repo / "supabase" / "migrations"
    plan = Path(tempfile.mkdtemp(prefix="tableshift-bench-"))
    (plan / "target.sql").write_text(TARGET)
    (plan / "rules.toml").write_text(RULES)

    def phase(url: str, name: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "tableshift", "sql", "--rules", str(plan / "rules.toml"), "--database-url", url, "--phase", name],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode:
            sys.exit(f"sql --phase {name}: {proc.stderr.strip()}")
        return proc.stdout

    # the same folder as --legacy-schema: every phase written and rehearsed
    proc = subprocess.run([sys.executable, "-m", "tableshift", "sql", "--rules", str(plan / "rules.toml"), "--legacy-schema", str(migrations)], capture_output=True, text=True)
    check("sql --legacy-schema supabase/migrations writes all four phases", (proc.returncode, proc.stdout.count("-- tableshift sql --phase")), (0, 4))

    with server.embedded() as srv:
        with psycopg.connect(srv.admin_url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        url = srv.admin_url.replace("/postgres?", "/app?")
        with psycopg.connect(url, autocommit=True) as conn:  # the project, as Supabase runs its migrations
            conn.execute(load.SUPABASE_ROLES)
            loader = load.Loader(conn, conn)
            loader.prelude()
            loader.finish()
            loader.load(migrations, what="schema")
        run(url, f"INSERT INTO auth.users (id) VALUES ('{U1}'), ('{U2}')")  # the app's trigger makes profiles and workspaces
        for user, public in ((U1, "private"), (U2, "public")):
            workspace = run(url, f"SELECT id FROM workspaces WHERE user_id = '{user}'")[0][0]
            run(url, f"INSERT INTO chats (id, user_id, workspace_id, context_length, embeddings_provider, include_profile_context,"
                f" include_workspace_instructions, model, name, prompt, temperature) VALUES ('{CHAT[user]}', '{user}', '{workspace}', 1, 'openai', true, true, 'm', 'c', 'p', 0.5)")
            run(url, f"INSERT INTO collections (id, user_id, description, name, sharing) VALUES ('{COLLECTION[user]}', '{user}', 'd', 'c', '{public}')")
        run(url, FILE.format(t="files", p="file_path", id=F[1], u=U1, n="u1 private", s="private"))
        run(url, FILE.format(t="files", p="file_path", id=F[2], u=U2, n="u2 public", s="public"))
        run(url, FILE.format(t="files", p="file_path", id=F[3], u=U2, n="u2 in a public collection", s="private"))
        run(url, f"INSERT INTO file_items (file_id, user_id, content, tokens) VALUES ('{F[1]}', '{U1}', 'item1', 1), ('{F[2]}', '{U2}', 'item2', 1), ('{F[3]}', '{U2}', 'item3', 1)")
        run(url, f"INSERT INTO chat_files (user_id, chat_id, file_id) VALUES ('{U1}', '{CHAT[U1]}', '{F[1]}'), ('{U2}', '{CHAT[U2]}', '{F[2]}')")
        run(url, f"INSERT INTO collection_files (user_id, collection_id, file_id) VALUES ('{U2}', '{COLLECTION[U2]}', '{F[3]}')")
        run(url, "ALTER PUBLICATION supabase_realtime ADD TABLE files")
        before = world(url)

        run(url, phase(url, "expand"))
        # old code keeps writing while the backfill runs
        as_user(url, U1, FILE.format(t="files", p="file_path", id=F[4], u=U1, n="old code", s="private"), write=True)
        as_user(url, U1, f"INSERT INTO chat_files (user_id, chat_id, file_id) VALUES ('{U1}', '{CHAT[U1]}', '{F[4]}')", write=True)
        check("new code reads old code's row", as_user(url, U1, f"SELECT name FROM documents WHERE id = '{F[4]}'"), [("old code",)])
        run(url, phase(url, "backfill"))
        # new code deployed (after backfill): both write, each reads the other's rows
        as_user(url, U1, FILE.format(t="documents", p="path", id=F[5], u=U1, n="new code", s="private"), write=True)
        as_user(url, U1, f"INSERT INTO file_links (user_id, kind, owner_id, file_id) VALUES ('{U1}', 'chat', '{CHAT[U1]}', '{F[5]}')", write=True)
        as_user(url, U1, f"UPDATE documents SET name = 'renamed by new code' WHERE id = '{F[1]}'", write=True)
        as_user(url, U1, f"UPDATE files SET description = 'old code again' WHERE id = '{F[5]}'", write=True)
        check("old code reads new code's row", as_user(url, U1, f"SELECT name, description FROM files WHERE id = '{F[5]}'"), [("new code", "old code again")])
        check("new code reads old code's update", as_user(url, U1, f"SELECT description FROM documents WHERE id = '{F[5]}'"), [("old code again",)])
        check("new code's update reaches the legacy table", as_user(url, U1, f"SELECT name FROM files WHERE id = '{F[1]}'"), [("renamed by new code",)])
        check("new code's link reaches the legacy junction", as_user(url, U1, f"SELECT count(*) FROM chat_files WHERE file_id = '{F[5]}'"), [(1,)])
        check("another user still cannot read a private row (legacy)", as_user(url, U2, f"SELECT count(*) FROM files WHERE id = '{F[4]}'"), [(0,)])
        check("another user still cannot read a private row (target)", as_user(url, U2, f"SELECT count(*) FROM documents WHERE id = '{F[5]}'"), [(0,)])
        check("parity finds no difference", run(url, phase(url, "parity")), [])
        middle = world(url)
        expected = {u: {k: v for k, v in before[u].items()} for u in before}
        check("each user reads what they read before, plus the new rows, and nothing else",
              {u: sorted(n for _, n in middle[u]["files"]) for u in middle},
              {U1: sorted(["renamed by new code", "u2 public", "u2 in a public collection", "old code", "new code"]), U2: sorted(["u2 public", "u2 in a public collection"])})  # fmt: skip
        check("file items join to the same files", {u: len(middle[u]["items"]) for u in middle}, {u: len(expected[u]["items"]) for u in expected})
        for user in (U1, U2):
            check(f"the target shows {user[:4]} exactly the legacy rows they read",
                  sorted(n for (n,) in as_user(url, user, "SELECT name FROM documents")), sorted(n for _, n in middle[user]["files"]))  # fmt: skip

        run(url, phase(url, "contract"))
        check("contract changes nothing anyone reads", world(url), middle)
        check("realtime: the target is published, the archive is not",
              run(url, "SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime' AND tablename IN ('files', 'documents')"), [("documents",)])  # fmt: skip
        as_user(url, U1, f"INSERT INTO file_items (file_id, user_id, content, tokens) VALUES ('{F[5]}', '{U1}', 'on new code row', 1)", write=True)
        try:
            as_user(url, U1, f"INSERT INTO file_items (file_id, user_id, content, tokens) VALUES ('{F[9]}', '{U1}', 'on nothing', 1)", write=True)
            check("an item on no file is refused", "accepted", "refused")
        except psycopg.errors.ForeignKeyViolation:
            check("an item on no file is refused", "refused", "refused")
        as_user(url, U1, f"UPDATE files SET description = 'old code, after contract' WHERE id = '{F[4]}'", write=True)
        check("the updated_at trigger runs for old code's update through the view",
              run(url, f"SELECT description, updated_at IS NOT NULL FROM documents WHERE id = '{F[4]}'"), [("old code, after contract", True)])  # fmt: skip
        as_user(url, U1, f"INSERT INTO collection_files (user_id, collection_id, file_id) VALUES ('{U1}', '{COLLECTION[U1]}', '{F[5]}')", write=True)
        check("old code's insert through a merged view lands with its kind",
              run(url, f"SELECT kind FROM file_links WHERE owner_id = '{COLLECTION[U1]}'"), [("collection",)])  # fmt: skip
        check("select * through a merged view shows the legacy columns only",
              [d.name for d in psycopg.connect(url).execute("SELECT * FROM collection_files LIMIT 0").description],
              ["user_id", "collection_id", "file_id", "created_at", "updated_at"])  # fmt: skip
        check("another user cannot read a private row through the view", as_user(url, U2, f"SELECT count(*) FROM files WHERE id = '{F[1]}'"), [(0,)])
    print(f"{len(failures)} failed" if failures else "every guarantee held")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
