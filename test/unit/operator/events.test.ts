// Events on a HASanTarget: a repeated one counts up on the first (as kubelet's recorder does), so
// `kubectl describe` shows "(x3 over 2m)" instead of three lines; Ready problems become Events.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { recordEvent } from "../../../operator/status/events.js";
import { readyProblemEvent } from "../../../operator/status/conditions.js";
import { target } from "./fixtures.js";
import { clientOf } from "./local-api.js";

test("the same Event again patches count and lastTimestamp of the first; another message is a new Event", async () => {
  const calls: { method: string; url: string; body: Record<string, unknown> }[] = [];
  let created = 0;
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (d: Buffer) => (text += d.toString()));
    req.on("end", () => {
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      calls.push({ method: req.method ?? "", url: req.url ?? "", body });
      res.setHeader("content-type", "application/json");
      if (req.method === "POST") {
        created++;
        res.end(JSON.stringify({ ...body, metadata: { name: `data.${created}`, namespace: "prod" } }));
      } else res.end(JSON.stringify(body));
    });
  });
  const client = await clientOf(server);
  try {
    const t = target();
    t.metadata.uid = `uid-${Date.now()}`;
    await recordEvent(client, t, "Warning", "ApplyFailed", "cannot apply children: quota", "op-1");
    await recordEvent(client, t, "Warning", "ApplyFailed", "cannot apply children: quota", "op-1");
    await recordEvent(client, t, "Warning", "ApplyFailed", "cannot apply children: quota", "op-1");
    await recordEvent(client, t, "Warning", "ApplyFailed", "cannot apply children: RBAC", "op-1");
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.url.split("?")[0]}`),
      [
        "POST /api/v1/namespaces/prod/events",
        "PATCH /api/v1/namespaces/prod/events/data.1",
        "PATCH /api/v1/namespaces/prod/events/data.1",
        "POST /api/v1/namespaces/prod/events",
      ],
    );
    assert.equal(calls[1]!.body.count, 2);
    assert.equal(calls[2]!.body.count, 3);
    assert.equal(calls[0]!.body.count, 1);
  } finally {
    client.close();
    server.close();
  }
});

test("Ready turning to InvalidSpec or ApplyFailed, or its message changing, is a Warning Event; nothing else is", () => {
  const ready = (reason: string, message: string, status: "True" | "False" = "False") => [
    { type: "Ready", status, reason, message, lastTransitionTime: "2026-01-01T00:00:00Z" },
  ];
  assert.deepEqual(
    readyProblemEvent(ready("BothNodesServing", "ok", "True"), ready("ApplyFailed", "quota")),
    {
      reason: "ApplyFailed",
      message: "quota",
    },
  );
  assert.equal(readyProblemEvent(ready("ApplyFailed", "quota"), ready("ApplyFailed", "quota")), undefined);
  assert.deepEqual(
    readyProblemEvent(ready("ApplyFailed", "quota"), ready("ApplyFailed", "rbac"))?.message,
    "rbac",
  );
  assert.deepEqual(
    readyProblemEvent(undefined, ready("InvalidSpec", "spec.capacity: too small"))?.reason,
    "InvalidSpec",
  );
  assert.equal(readyProblemEvent(undefined, ready("NodesNotRunning", "starting")), undefined);
});
