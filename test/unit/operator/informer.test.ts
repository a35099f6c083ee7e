import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Informer } from "../../../operator/kit/informer.js";
import { PodViewSchema } from "../../../operator/status/observe.js";
import { createLogger } from "../../../target/log.js";
import { clientOf, until } from "./local-api.js";

/**
 * A fake API server on 127.0.0.1 for one resource: lists at a resourceVersion, and answers watches
 * with a scripted sequence (events, 410 Gone, server errors) so the informer's recovery is visible.
 */
function fakeApi(script: { watch: (rv: string, res: http.ServerResponse) => void }) {
  const requests: string[] = [];
  let listRv = 10;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(
      `${url.searchParams.get("watch") ? "watch" : "list"}@${url.searchParams.get("resourceVersion") ?? ""}`,
    );
    if (url.searchParams.get("watch")) {
      script.watch(url.searchParams.get("resourceVersion") ?? "", res);
      return;
    }
    listRv++;
    res.setHeader("content-type", "application/json");
    res.end(
      JSON.stringify({
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: String(listRv) },
        items: [{ metadata: { name: `p${listRv}`, namespace: "ns", resourceVersion: String(listRv) } }],
      }),
    );
  });
  return { server, requests };
}

test("after a watch error the informer restarts by itself and resumes from the last resourceVersion", async () => {
  let watches = 0;
  const { server, requests } = fakeApi({
    watch(rv, res) {
      watches++;
      if (watches === 1) {
        res.setHeader("content-type", "application/json");
        res.write(
          JSON.stringify({
            type: "ADDED",
            object: { metadata: { name: "w", namespace: "ns", resourceVersion: "42" } },
          }) + "\n",
        );
        setTimeout(() => res.destroy(), 20); // connection dies mid-watch
        return;
      }
      if (watches === 2) {
        res.statusCode = 500;
        res.end("{}");
        return;
      }
      res.setHeader("content-type", "application/json");
      res.write(""); // keep the watch open
    },
  });
  const client = await clientOf(server);
  const inf = new Informer(
    client,
    { apiVersion: "v1", kind: "Pod", namespace: "ns", schema: PodViewSchema },
    createLogger("test", {}),
  );
  const seen: string[] = [];
  inf.on((e, o) => seen.push(`${e}:${o.metadata.name}`));
  await inf.start();
  await inf.waitForSync();
  assert.ok(inf.hasSynced());
  await until(() => watches >= 3, "third watch");
  assert.deepEqual(seen.slice(0, 2), ["upsert:p11", "upsert:w"]);
  assert.ok(inf.get("w", "ns"));
  // One list only: the reconnects resumed from resourceVersion 42 instead of listing again.
  assert.deepEqual(
    requests.filter((r) => r.startsWith("list")),
    ["list@"],
  );
  assert.ok(requests.includes("watch@42"), requests.join(" "));
  assert.ok(inf.restarts >= 1);
  await inf.stop();
  client.close();
  server.closeAllConnections();
  server.close();
});

test("410 Gone makes the informer list again, and objects gone meanwhile are reported deleted", async () => {
  let watches = 0;
  const { server, requests } = fakeApi({
    watch(_rv, res) {
      watches++;
      res.setHeader("content-type", "application/json");
      if (watches === 1) {
        res.end(
          JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } }) + "\n",
        );
        return;
      }
      res.write("");
    },
  });
  const client = await clientOf(server);
  const inf = new Informer(
    client,
    { apiVersion: "v1", kind: "Pod", namespace: "ns", schema: PodViewSchema },
    createLogger("test", {}),
  );
  const seen: string[] = [];
  inf.on((e, o) => seen.push(`${e}:${o.metadata.name}`));
  await inf.start();
  await until(() => watches >= 2, "second watch");
  assert.deepEqual(requests.filter((r) => r.startsWith("list")).length, 2);
  assert.ok(seen.includes("delete:p11") && seen.includes("upsert:p12"), seen.join(" "));
  assert.equal(inf.get("p11", "ns"), undefined);
  await inf.stop();
  client.close();
  server.closeAllConnections();
  server.close();
});

test("an object of the wrong shape is logged and left out; the watch goes on and later objects arrive", async () => {
  const { server } = fakeApi({
    watch(_rv, res) {
      res.setHeader("content-type", "application/json");
      const event = (type: string, object: unknown) => res.write(JSON.stringify({ type, object }) + "\n");
      event("ADDED", {
        metadata: { name: "bad", namespace: "ns", resourceVersion: "43" },
        spec: "not an object",
      });
      event("ADDED", { metadata: { name: "good", namespace: "ns", resourceVersion: "44" } });
    },
  });
  const client = await clientOf(server);
  const inf = new Informer(
    client,
    { apiVersion: "v1", kind: "Pod", namespace: "ns", schema: PodViewSchema },
    createLogger("test", {}),
  );
  await inf.start();
  await inf.waitForSync();
  await until(() => inf.get("good", "ns") !== undefined, "the object after the bad one");
  assert.equal(inf.get("bad", "ns"), undefined);
  assert.equal(inf.restarts, 0, "no watch restart for one bad object");
  assert.deepEqual(
    inf
      .list("ns")
      .map((p) => p.metadata.name)
      .sort(),
    ["good", "p11"],
  );
  await inf.stop();
  client.close();
  server.closeAllConnections();
  server.close();
});
