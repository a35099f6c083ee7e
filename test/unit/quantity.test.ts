import { test } from "node:test";
import assert from "node:assert/strict";
import { parseQuantity } from "../../target/quantity.js";

test("plain byte counts and binary/decimal suffixes", () => {
  assert.equal(parseQuantity("4096"), 4096);
  assert.equal(parseQuantity("1Gi"), 1073741824);
  assert.equal(parseQuantity("64Mi"), 64 * 1024 * 1024);
  assert.equal(parseQuantity("2G"), 2_000_000_000);
  assert.equal(parseQuantity("1.5Ki"), 1536);
});

test("garbage, negative and fractional byte sizes are refused with the accepted forms", () => {
  for (const bad of ["", "1GB", "-1Gi", "1.3", "Gi", "1 Zi"]) {
    assert.throws(() => parseQuantity(bad), /invalid size/);
  }
});
