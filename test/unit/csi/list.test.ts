import { test } from "node:test";
import assert from "node:assert/strict";
import { page } from "../../../operator/csi/controller/list.js";

const vol = (id: string, second: number) => ({ created: `2030-01-01T00:00:${second}Z`, id, item: id });

test("page: no limit gives everything in creation order and no token", () => {
  const p = page([vol("b", 20), vol("a", 10)], 0, "");
  assert.deepEqual(p, { items: ["a", "b"], nextToken: "" });
});

test("page: the token's volume deleted between pages does not skip the next one", () => {
  const all = [vol("a", 10), vol("b", 11), vol("c", 12), vol("d", 13)];
  const first = page(all, 2, "");
  assert.deepEqual(first.items, ["a", "b"]);
  const later = [vol("a", 10), vol("c", 12), vol("d", 13), vol("e", 14)];
  assert.deepEqual(page(later, 0, first.nextToken).items, ["c", "d", "e"]);
});

test("page: a token that this driver did not issue is ABORTED", () => {
  assert.throws(() => page([vol("a", 1)], 0, "not-a-token"), /starting_token/);
});
