/**
 * The kernel initiator with dm-multipath through the pair's other faults (the fast set in
 * test/integration/guest-multipath.test.ts kills node a): the node behind the non-optimized
 * path killed and restarted, the peer link cut while both nodes live, and node a killed again
 * after a failover made b the node that orders writes. fio with verification runs through each,
 * with no error; the LUN files are byte-identical after each.
 */
import { after, before, describe, it } from "node:test";
import { GuestPair } from "../support/guest-pair.js";

describe("kernel initiator through every pair fault", { timeout: 3_600_000 }, () => {
  const gp = new GuestPair();
  before(() => gp.setup("faults"));
  after(() => gp.cleanup());

  it("node b (non-optimized path) killed during writes and restarted: no error, identical copies", async (t) => {
    await gp.failover(t, {
      fault: async () => {
        t.diagnostic("kill -9 node b");
        await gp.pair.kill("b");
        await gp.waitServingAlone("a");
      },
      heal: () => gp.pair.start("b"),
    });
  });

  it("peer link cut while both nodes live, then restored: one node serves, no error, identical copies", async (t) => {
    await gp.failover(t, {
      fault: async () => {
        t.diagnostic("cut the peer link");
        gp.pair.proxy.cut();
        await Promise.race([gp.waitServingAlone("a"), gp.waitServingAlone("b")]);
        const [a, b] = [await gp.pair.status("a"), await gp.pair.status("b")];
        t.diagnostic(`a: ${a.state} serving=${a.serving}, b: ${b.state} serving=${b.serving}`);
        if (a.serving && b.serving) throw new Error("both nodes serve while the link is cut");
        // The node that does not serve answers TEST UNIT READY with NOT READY: its path is failed.
        await gp.waitPathFailed(a.serving ? "b" : "a");
      },
      heal: async () => {
        t.diagnostic("restore the peer link");
        gp.pair.proxy.restore();
      },
    });
  });

  it("the node that orders writes killed, whichever it is, then the other: no error, identical copies", async (t) => {
    for (let i = 0; i < 2; i++) {
      const victim = await gp.optimizedNode();
      const survivor = victim === "a" ? "b" : "a";
      await gp.failover(t, {
        fault: async () => {
          t.diagnostic(`kill -9 node ${victim} (optimized)`);
          await gp.pair.kill(victim);
          await gp.waitServingAlone(survivor);
        },
        heal: () => gp.pair.start(victim),
      });
    }
  });
});
