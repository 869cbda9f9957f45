// Each chain (JavaScript source of an arrow function taking `supabase`) run with the real
// @supabase/postgrest-js client and a fetch that records the request instead of sending it.
// stdin: a JSON list of chains; stdout: a JSON list of {method, url, headers, body}.
import { PostgrestClient } from "@supabase/postgrest-js";

const chains = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (d) => (text += d));
  process.stdin.on("end", () => resolve(text));
}));
const out = [];
for (const source of chains) {
  let seen = null;
  const fetch = async (url, init) => {
    seen = { method: init.method, url: String(url), headers: Object.fromEntries(new Headers(init.headers).entries()), body: init.body ?? null };
    return new Response("[]", { status: 200, headers: { "content-type": "application/json" } });
  };
  const client = new PostgrestClient("http://db.invalid/rest/v1", { fetch });
  const supabase = { from: (t) => client.from(t), schema: (s) => client.schema(s) };
  try {
    await eval(source)(supabase);
  } catch (error) {
    seen = { error: String(error) };
  }
  out.push(seen);
}
process.stdout.write(JSON.stringify(out));
