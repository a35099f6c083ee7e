import { test } from "node:test";
import assert from "node:assert/strict";
import { AuthFailureThrottle } from "../../../target/iscsi/auth-throttle.js";
import { ConnectionLimits, sourceOf } from "../../../target/iscsi/connection-limits.js";
import { WriteMemory } from "../../../target/iscsi/write-memory.js";

const MiB = 1024 * 1024;

test("write memory: a session beyond its 64 MiB is refused as 'session', sessions together beyond 256 MiB as 'target'; releases give it back", () => {
  const m = new WriteMemory({ target: 256 * MiB, session: 64 * MiB });
  const s = [m.session(), m.session(), m.session(), m.session(), m.session()];
  assert.equal(s[0]!.reserve(64 * MiB), undefined);
  assert.equal(s[0]!.reserve(1), "session");
  for (const x of s.slice(1, 4)) assert.equal(x.reserve(64 * MiB), undefined);
  assert.equal(m.inUse, 256 * MiB);
  assert.equal(s[4]!.reserve(512), "target");
  assert.equal(s[4]!.inUse, 0, "a refusal reserves nothing");
  s[1]!.release(64 * MiB);
  assert.equal(s[4]!.reserve(64 * MiB), undefined);
  s[2]!.release(10 * 64 * MiB);
  assert.equal(s[2]!.inUse, 0, "releasing more than held gives back only what was held");
  assert.equal(m.inUse, 192 * MiB);
  assert.throws(() => new WriteMemory({ target: MiB, session: 2 * MiB }), /exceeds/);
});

test("connection limits: the 65th connection from one address and the 1025th in all are refused; closing one lets the next in", () => {
  const l = new ConnectionLimits({ total: 1024, perSource: 64 });
  for (let i = 0; i < 64; i++) assert.equal(l.admit("10.0.0.1"), "ok");
  assert.equal(l.admit("10.0.0.1"), "source-full");
  for (let i = 0; i < 960; i++) assert.equal(l.admit(`10.0.${1 + Math.floor(i / 60)}.${i % 60}`), "ok");
  assert.equal(l.total, 1024);
  assert.equal(l.admit("10.9.9.9"), "total-full");
  l.release("10.0.0.1");
  assert.equal(l.held("10.0.0.1"), 63);
  assert.equal(l.admit("10.9.9.9"), "ok");
  l.release("never-seen");
  assert.equal(l.total, 1024, "releasing an unknown source changes nothing");
});

test("connection limits count an IPv4 address, an IPv4-mapped IPv6 address as IPv4, and an IPv6 address by its /64", () => {
  assert.equal(sourceOf("192.0.2.7"), "192.0.2.7");
  assert.equal(sourceOf("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(sourceOf("2001:db8:1:2:aaaa::1"), sourceOf("2001:db8:1:2:bbbb:cccc:dddd:eeee"));
  assert.notEqual(sourceOf("2001:db8:1:2::1"), sourceOf("2001:db8:1:3::1"));
  assert.equal(
    sourceOf("2001:0db8:0001:0002::1"),
    sourceOf("2001:db8:1:2::9"),
    "leading zeros do not matter",
  );
  assert.equal(sourceOf("::1"), "0:0:0:0::/64");
  assert.equal(sourceOf("fe80::1%eth0"), sourceOf("fe80::2%eth1"));
  assert.equal(sourceOf(undefined), "?");
});

test("failed authentications from one source are answered 1 s apart, each after at least 1 s; one too far off is not answered at all", () => {
  let now = 0;
  const t = new AuthFailureThrottle(1000, 10_000, () => now);
  assert.equal(t.delay("a"), 1000);
  assert.equal(t.delay("a"), 2000, "a second guess in parallel waits its turn");
  assert.equal(t.delay("b"), 1000, "another source is not held up");
  now = 1500;
  assert.equal(t.delay("a"), 1500, "turns are kept one second apart");
  for (let i = 0; i < 8; i++) assert.notEqual(t.delay("a"), undefined);
  assert.equal(t.delay("a"), undefined, "beyond the login timeout: close without answering");
  now = 100_000;
  assert.equal(t.delay("a"), 1000, "an old burst is forgotten");
});
