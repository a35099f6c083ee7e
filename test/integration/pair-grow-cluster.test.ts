/**
 * On the local cluster, with the operator: growing spec.capacity of a Working pair (CHAP on) under a
 * qemu-io write load through both portals grows the LUN live. No pod is replaced or restarted, the
 * backing PVCs and the exported PV follow, the pair stays or is quickly back Synchronized, both
 * portals report the new size, the data written before is intact and the new space is writable.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness } from "./operator-harness.js";
import { qemuIo, qemuIoOk } from "../support/qemu.js";

const MiB = 1024 * 1024;
const name = "grow";
let h: OperatorHarness;

before(async () => {
  h = await OperatorHarness.create("hst-grow");
  await h.startOperator(["--status-poll-steady-ms", "1000"]);
});

after(async () => {
  await h?.cleanup();
});

interface PodFacts {
  uid: string;
  restarts: number;
}

async function podFacts(): Promise<Record<"a" | "b", PodFacts>> {
  const one = async (n: "a" | "b"): Promise<PodFacts> => {
    const p = (await h.child("v1", "Pod", `${name}-${n}`)) as unknown as {
      metadata: { uid: string };
      status?: { containerStatuses?: { restartCount: number }[] };
    };
    return {
      uid: p.metadata.uid,
      restarts: (p.status?.containerStatuses ?? []).reduce((s, c) => s + c.restartCount, 0),
    };
  };
  return { a: await one("a"), b: await one("b") };
}

test("a Working pair grows from 64Mi to 128Mi under a write load without restarting a pod", () =>
  h.guard(async () => {
    await h.applyTarget(name, {
      capacity: "64Mi",
      export: { persistentVolume: { reclaimPolicy: "Delete" } },
    });
    await h.waitSynchronized(name);
    const t = await h.target(name);
    const [portalA, portalB] = t?.status?.portals ?? [];
    const iqn = t?.status?.iqn;
    assert.ok(portalA && portalB && iqn);
    const chap = await h.chapCredentials(name);
    const url = (portal: string) => `iscsi://${chap.user}%${chap.secret}@${portal}/${iqn}/0`;
    await qemuIoOk(url(portalA), ["write -P 0x11 0 8M"]);
    const before = await podFacts();

    // The load: 1 MiB writes through both portals, one qemu-io run after the other.
    let stopping = false;
    let runs = 0;
    const failures: string[] = [];
    const loop = async (portal: string, base: number) => {
      for (let i = 0; !stopping; i++) {
        const res = await qemuIo(url(portal), [`write -P 0x4${i % 8} ${base + (i % 8) * MiB} 1M`]);
        runs++;
        if (!res.ok) failures.push(`${portal}: ${res.stdout}${res.stderr}`);
      }
    };
    const load = Promise.all([loop(portalA, 16 * MiB), loop(portalB, 32 * MiB)]);
    await new Promise((res) => setTimeout(res, 3000));

    const askedAt = Date.now();
    await h.applyTarget(name, {
      capacity: "128Mi",
      export: { persistentVolume: { reclaimPolicy: "Delete" } },
    });
    const grown = await h.waitFor(
      "both nodes report a 128Mi LUN and Capacity True",
      async () => {
        const s = (await h.target(name))?.status;
        const sizes = s?.nodes?.map((n) => n.lunSizeBytes);
        const c = s?.conditions?.find((x) => x.type === "Capacity");
        return sizes?.length === 2 && sizes.every((x) => x === 128 * MiB) && c?.status === "True"
          ? s
          : undefined;
      },
      180_000,
    );
    const tookMs = Date.now() - askedAt;
    await new Promise((res) => setTimeout(res, 3000));
    stopping = true;
    await load;
    assert.deepEqual(failures, [], `every write of the load succeeded (${runs} runs)`);
    assert.ok(runs >= 4, `the load ran (${runs} runs)`);
    await h.waitFor(
      "Synchronized",
      async () =>
        (await h.target(name))?.status?.conditions?.find((x) => x.type === "Synchronized")?.status === "True",
      30_000,
    );
    assert.deepEqual(await podFacts(), before, `no pod replaced or restarted (grown in ${tookMs} ms)`);
    assert.deepEqual(
      grown.nodes?.map((n) => n.state),
      ["Working", "Working"],
    );

    for (const portal of [portalA, portalB]) {
      const length = await qemuIoOk(url(portal), ["length"]);
      assert.match(length, /^128 MiB$/m, `${portal} reports the new size`);
    }
    await qemuIoOk(url(portalB), ["read -P 0x11 0 8M"]);
    await qemuIoOk(url(portalA), ["write -P 0x77 100M 4M"]);
    await qemuIoOk(url(portalB), ["read -P 0x77 100M 4M", "write -P 0x78 120M 4M"]);
    await qemuIoOk(url(portalA), ["read -P 0x78 120M 4M"]);

    for (const n of ["a", "b"] as const) {
      const pvc = (await h.child("v1", "PersistentVolumeClaim", `${name}-${n}-data`)) as unknown as {
        spec: { resources: { requests: { storage: string } } };
        status?: { capacity?: { storage?: string } };
      };
      assert.equal(
        pvc.spec.resources.requests.storage,
        "192Mi",
        `the PVC of node ${n} asks for the new storage`,
      );
    }
    const pv = (await h.child("v1", "PersistentVolume", `hasan-${h.namespace}-${name}`, true)) as unknown as {
      spec: { capacity: { storage: string } };
    };
    assert.equal(pv.spec.capacity.storage, "128Mi", "the exported PV follows");
  }));
