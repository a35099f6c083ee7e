import { test } from "node:test";
import assert from "node:assert/strict";
import { nodeStatusOf } from "../../../operator/pair/node-status.js";
import { node } from "./fixtures.js";

test("status.nodes[].linkRecords says what protects the link's records while linked, and nothing otherwise", () => {
  const linked = (records?: "encrypted" | "authenticated", connected = true) => {
    const n = node("a", { state: "Working" });
    const peer = n.agent!.replication!.peer;
    peer.connected = connected;
    if (records) Object.assign(peer, { records, protocol: 7 });
    return nodeStatusOf(n);
  };
  assert.equal(linked("authenticated").linkRecords, "Authenticated");
  assert.equal(linked("encrypted").linkRecords, "Encrypted");
  assert.equal(linked("authenticated", false).linkRecords, undefined, "not linked: nothing claimed");
  assert.equal(linked(undefined).linkRecords, undefined, "an older target that does not say");
});
