import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { z } from "zod";
import { Reflector, type ChangeKind } from "../../../operator/kit/reflector.js";
import { createLogger } from "../../../target/log.js";
import { clientOf, until } from "./local-api.js";

const Item = z.looseObject({
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().default(""),
  }),
});
type Item = z.infer<typeof Item>;

/**
 * A fake API server for one collection: a list returns `items` at `rv`; each watch runs the next
 * scripted step (or holds the stream open when the script is done).
 */
function fakeApi(state: {
  items: () => object[];
  rv: () => string;
  watches: ((res: http.ServerResponse) => void)[];
}) {
  const requests: string[] = [];
  const open: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const watch = url.searchParams.get("watch") === "true";
    requests.push(
      watch
        ? `watch@${url.searchParams.get("resourceVersion")} bookmarks=${url.searchParams.get("allowWatchBookmarks")} timeout=${url.searchParams.get("timeoutSeconds")}`
        : "list",
    );
    if (!watch) {
      res.setHeader("content-type", "application/json");
      const items = state.items(); // first: a script may count lists there
      res.end(JSON.stringify({ kind: "List", metadata: { resourceVersion: state.rv() }, items }));
      return;
    }
    const step = state.watches.shift();
    if (step) step(res);
    else {
      res.writeHead(200);
      open.push(res);
    }
  });
  return { server, requests, open };
}

/** A reflector of pods on the fake API, recording its changes as "upsert a", "delete b". */
async function watched(api: ReturnType<typeof fakeApi>) {
  const changes: string[] = [];
  const r = new Reflector<Item>(
    await clientOf(api.server),
    "/api/v1/pods",
    Item,
    (kind: ChangeKind, o) => changes.push(`${kind} ${o.metadata.name}`),
    createLogger("test"),
  );
  return { r, changes };
}

function shutDown(r: Reflector<Item>, api: ReturnType<typeof fakeApi>): void {
  r.stop();
  for (const res of api.open) res.end();
  api.server.close();
}

const item = (name: string, rv: string) => ({ metadata: { name, namespace: "ns", resourceVersion: rv } });
const line = (type: string, object: object) => JSON.stringify({ type, object }) + "\n";

test("a reflector validates what it keeps, resumes each watch from the last resourceVersion and bookmark, with a server-side timeout", async () => {
  const api = fakeApi({
    items: () => [item("a", "5")],
    rv: () => "10",
    watches: [
      (res) => {
        res.writeHead(200);
        res.write(line("ADDED", item("b", "11")));
        res.write(line("BOOKMARK", { metadata: { resourceVersion: "15" } }));
        res.end();
      },
      (res) => {
        res.writeHead(200);
        res.end(line("DELETED", item("a", "16")));
      },
    ],
  });
  const { r, changes } = await watched(api);
  r.start();
  try {
    await r.hasSynced();
    await until(() => api.open.length === 1, "the third watch to be open");
    assert.deepEqual(api.requests, [
      "list",
      "watch@10 bookmarks=true timeout=300",
      "watch@15 bookmarks=true timeout=300",
      "watch@16 bookmarks=true timeout=300",
    ]);
    assert.deepEqual(changes, ["upsert a", "upsert b", "delete a"]);
    assert.deepEqual([...r.store.keys()], ["ns/b"]);
    assert.equal(r.store.get("ns/b")?.metadata.uid, "", "objects are kept as the schema parses them");
  } finally {
    shutDown(r, api);
  }
});

test("410 Gone, as a watch ERROR event or as the HTTP status, lists again at once and reports what went away as deleted", async () => {
  let listed = 0;
  const api = fakeApi({
    items: () => (++listed === 1 ? [item("a", "5"), item("b", "6")] : [item("b", "30")]),
    rv: () => String(listed * 10),
    watches: [
      (res) => {
        res.writeHead(200);
        res.end(line("ERROR", { kind: "Status", code: 410, reason: "Expired" }));
      },
      (res) => {
        res.writeHead(410, { "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", code: 410, reason: "Gone" }));
      },
    ],
  });
  const { r, changes } = await watched(api);
  const started = Date.now();
  r.start();
  try {
    await until(() => api.open.length === 1, "a watch after two relists");
    assert.ok(Date.now() - started < 900, "no retry delay before a relist");
    assert.equal(r.lists, 3);
    assert.deepEqual(api.requests, [
      "list",
      "watch@10 bookmarks=true timeout=300",
      "list",
      "watch@20 bookmarks=true timeout=300",
      "list",
      "watch@30 bookmarks=true timeout=300",
    ]);
    assert.deepEqual(changes.slice(0, 4), ["upsert a", "upsert b", "upsert b", "delete a"]);
    assert.deepEqual([...r.store.keys()], ["ns/b"]);
  } finally {
    shutDown(r, api);
  }
});

test("a failing watch is retried with growing delays, and one that works again resets them", async () => {
  const fail = (res: http.ServerResponse) => {
    res.writeHead(500);
    res.end("boom");
  };
  const api = fakeApi({ items: () => [], rv: () => "10", watches: [fail, fail, fail] });
  const at: number[] = [];
  api.server.on("request", () => at.push(Date.now()));
  const client = await clientOf(api.server);
  const r = new Reflector<Item>(client, "/api/v1/pods", Item, () => undefined, createLogger("test"), {
    backoffMs: { base: 100, max: 1000 },
  });
  r.start();
  try {
    await until(() => api.open.length === 1, "the fourth watch to be open");
    // list, watch (500), +100 ms watch (500), +200 ms watch (500), +400 ms watch (open)
    const gaps = at.slice(2).map((t, i) => t - at[i + 1]!);
    assert.equal(gaps.length, 3);
    assert.ok(gaps[0]! >= 90 && gaps[1]! >= 190 && gaps[2]! >= 390, `gaps ${gaps.join(", ")} ms`);
    assert.ok(gaps[2]! > gaps[0]!, "delays grow");
  } finally {
    shutDown(r, api);
  }
});
