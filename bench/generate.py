"""Deterministic generator of realistic TypeScript trees for benchmarks: query calls of every shape,
noise `.from()` calls, and ordinary code around them.

    python bench/generate.py OUT_DIR --files 2000 [--seed 7]

The same arguments always give the same bytes.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

LEGACY = ["content_metadata", "content_generation_metadata_comprehensive", "posted_decisions", "tweets", "posts",
          "outcomes", "real_tweet_metrics", "tweet_analytics", "tweet_metrics"]  # fmt: skip
OTHER = ["content_queue", "posted_content", "engagement_metrics", "profiles", "reply_opportunities", "api_usage_log",
         "bandit_arms", "job_runs", "events", "reply_conversions"]  # fmt: skip
COLUMNS = ["id", "decision_id", "tweet_id", "content", "status", "topic_cluster", "angle", "tone", "likes_count",
           "impressions_count", "engagement_rate", "created_at", "posted_at", "scheduled_at", "generator_name"]  # fmt: skip
RECEIVERS = ["supabase", "this.supabase", "client", "this.client", "admin", "db", "getSupabaseClient()", "this.db.getClient()"]

QUERY_SHAPES = [
    "  const {{ data, error }} = await {recv}\n    .from('{table}')\n    .select('{cols}')\n    .eq('{col}', {value})\n    .order('{col2}', {{ ascending: false }})\n    .limit({n});\n  if (error) throw error;\n",
    "  const {{ error: insertError }} = await {recv}.from('{table}').insert({{ {col}: {value}, {col2}: {value2} }});\n  if (insertError) log.warn(insertError);\n",
    "  await {recv}.from('{table}').update({{ {col}: {value} }}).eq('id', id);\n",
    "  await {recv}.from('{table}').upsert([{{ {col}, {col2}: {value2} }}], {{ onConflict: '{col}' }});\n",
    "  await {recv}.from('{table}').delete().lt('{col}', cutoff);\n",
    "  let q = {recv}.from('{table}').select('*, author:profiles(name, avatar_url)');\n  if (filter) q = q.eq('{col}', filter);\n  const {{ data: rows }} = await q;\n",
    "  const {{ count }} = await {recv}.from('{table}').select('*', {{ count: 'exact', head: true }}).gte('{col}', since);\n",
    "  const {{ data: m }} = await {recv}.from('{table}').select('{col}, outcomes(engagement_rate, likes_count)').or('{col}.is.null,{col2}.gt.5');\n",
    "  await {recv}.from(TABLE).insert(row);\n",
    "  await {recv}.from(tableName).select('*');\n",
    "  await {recv}.rpc('refresh_{table}', {{ since }});\n",
    "  await {recv}.storage.from('media').upload(path, file);\n",
    "  await {recv}.schema('analytics').from('events').insert({{ kind: '{table}' }});\n",
]
# how often each shape occurs, as measured on the seed's codebase: literal tables almost always
# (97% of calls are certain), a builder held in a `let` rarely, helpers taking a table rarer still
SHAPE_WEIGHTS = [30, 15, 15, 8, 5, 1, 8, 8, 1, 1, 3, 1, 1]
NOISE = [
    "  const parts = Array.from(items).map((x) => x.id);\n",
    "  const buf = Buffer.from(payload, 'base64');\n",
    "  const bytes = Uint8Array.from([1, 2, 3]);\n",
    "  const chars = Array.from('abc');\n",
    "  gsap.from(el, {{ opacity: 0, duration: 0.3 }});\n",
    "  const rows = await db.select().from(users).where(eq(users.id, id));\n",
]
FILLER = [
    "export interface {Name}Props {{\n  id: string;\n  title: string;\n  createdAt: Date;\n  tags: string[];\n}}\n\n",
    "function format{Name}(value: number): string {{\n  if (value > 1_000_000) return `${{(value / 1_000_000).toFixed(1)}}M`;\n  if (value > 1_000) return `${{(value / 1_000).toFixed(1)}}k`;\n  return String(value);\n}}\n\n",
    "export class {Name}Service {{\n  private cache = new Map<string, unknown>();\n\n  constructor(private readonly logger: Logger) {{}}\n\n  get(key: string) {{\n    return this.cache.get(key);\n  }}\n\n  set(key: string, value: unknown) {{\n    this.logger.debug(`set ${{key}}`);\n    this.cache.set(key, value);\n  }}\n}}\n\n",
    "const {name}Config = {{\n  retries: 3,\n  backoffMs: 250,\n  endpoints: ['a', 'b', 'c'],\n  enabled: process.env.{NAME}_ENABLED === 'true',\n}};\n\n",
    "export async function with{Name}Retry<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {{\n  let last: unknown;\n  for (let i = 0; i < attempts; i++) {{\n    try {{\n      return await fn();\n    }} catch (err) {{\n      last = err;\n      await new Promise((r) => setTimeout(r, 2 ** i * 100));\n    }}\n  }}\n  throw last;\n}}\n\n",
]
WORDS = ["queue", "metrics", "poster", "planner", "scraper", "learner", "thread", "reply", "timeline", "cache", "budget", "ranker"]


def _fill(rng: random.Random, template: str) -> str:
    table = rng.choice(LEGACY if rng.random() < 0.45 else OTHER)
    col, col2 = rng.sample(COLUMNS, 2)
    name = rng.choice(WORDS).capitalize() + rng.choice(WORDS).capitalize()
    return template.format(
        recv=rng.choice(RECEIVERS),
        table=table,
        cols=", ".join(rng.sample(COLUMNS, rng.randint(1, 5))),
        col=col,
        col2=col2,
        value=rng.choice(["'queued'", "42", "true", "id", "null"]),
        value2=rng.choice(["'x'", "1", "false", "now"]),
        n=rng.randint(1, 100),
        Name=name,
        name=name[0].lower() + name[1:],
        NAME=name.upper(),
    )


def generate_file(rng: random.Random, index: int) -> str:
    """One module: imports, ordinary code, and in about half of the files some query functions."""
    out = [
        "import { supabase, getSupabaseClient } from '../lib/supabase';\n",
        "import { log } from '../lib/log';\n",
        "import type { Logger } from '../lib/log';\n\n",
        "const TABLE = 'outcomes';\n\n",
    ]
    # calibrated on the seed's own codebase (jatenner/xBOT, see codebases.toml): 2,509 TS/JS files,
    # 8.5 KB on average, 53% of them mention `.from(` (queries or not), 4.2 query calls in each of those
    target = rng.randint(3_000, 14_000)
    size = sum(map(len, out))
    has_queries = rng.random() < 0.42
    has_noise = rng.random() < 0.2
    fn = 0
    while size < target:
        if has_queries and rng.random() < 0.1:
            body = "".join(_fill(rng, rng.choices(QUERY_SHAPES, SHAPE_WEIGHTS)[0]) for _ in range(rng.randint(1, 2)))
            chunk = f"export async function job{index}_{fn}(id: string, filter?: string, since?: string, tableName = 'posts') {{\n  const cutoff = new Date().toISOString();\n{body}  return true;\n}}\n\n"
        elif has_noise and rng.random() < 0.1:
            chunk = f"export function util{index}_{fn}(items: Iterable<{{ id: string }}>, el: Element, payload: string) {{\n{_fill(rng, rng.choice(NOISE))}  return null;\n}}\n\n"
        else:
            chunk = _fill(rng, rng.choice(FILLER)).replace("{Name}", f"X{index}_{fn}")
        out.append(chunk)
        size += len(chunk)
        fn += 1
    return "".join(out)


def generate(out: Path, files: int, seed: int = 7) -> int:
    """Write `files` modules under `out` (replaced); returns the bytes written."""
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        folder = out / "src" / rng.choice(["jobs", "lib", "services", "repositories", "components", "api"]) / f"m{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        text = generate_file(rng, i)
        (folder / f"module{i}.ts").write_text(text)
        total += len(text)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    total = generate(args.out, args.files, args.seed)
    print(f"wrote {args.files} files, {total / 1e6:.1f} MB, under {args.out}")


if __name__ == "__main__":
    main()
