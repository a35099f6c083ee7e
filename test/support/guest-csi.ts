/**
 * The CSI driver's node service running inside a test guest (test/support/guest.ts) with the real
 * kernel initiator, dm-multipath and filesystems, and a controller service on the host whose
 * volumes are a GuestPair's real pair.
 *
 * The guest mounts the repository (dist/, node_modules/, operator/csi/proto/) and the host's node
 * binary read-only over 9p, so what runs there is exactly what was built here. The test calls the
 * node service over gRPC through a forwarded port; the controller service listens on a loopback
 * TCP port of the host, which the guest reaches as 10.0.2.2.
 */
import { realpathSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import type { HASanTarget } from "../../operator/api/target.js";
import { ControllerService } from "../../operator/csi/controller/service.js";
import type { ListedTarget, TargetStore } from "../../operator/csi/controller/targets.js";
import type { TargetManifest } from "../../operator/csi/controller/volume.js";
import type { VolumeRef } from "../../operator/csi/controller/naming.js";
import { identityHandlers } from "../../operator/csi/identity.js";
import { csiClients, loadCsiServices } from "../../operator/csi/proto.js";
import { serve, shutdown } from "../../operator/csi/server.js";
import { serialFromUid } from "../../operator/pair/names.js";
import { KubeApiError } from "../../operator/kit/kube-client.js";
import { HOST_FROM_GUEST, type Guest, type GuestShare } from "./guest.js";
import type { Chap } from "./guest-iscsi.js";
import { freePort } from "./processes.js";
import { repoRoot } from "./target-process.js";

/** Where the host's node binary is in the guest (Debian bookworm's own is version 18). */
const GUEST_NODE_DIR = "/opt/host-node";
export const GUEST_NODE = `${GUEST_NODE_DIR}/node`;
export const NODE_SOCKET = "/run/csi/csi.sock";
export const NODE_ENDPOINT = `unix://${NODE_SOCKET}`;
export const NODE_STATE_DIR = "/var/lib/hasan-csi";
const NODE_LOG = "/run/csi/node.log";

/** The repository, its node_modules where they really are, and the node binary. */
export function csiGuestShares(): GuestShare[] {
  const shares: GuestShare[] = [
    { hostPath: repoRoot },
    { hostPath: dirname(process.execPath), guestPath: GUEST_NODE_DIR },
  ];
  const modules = realpathSync(join(repoRoot, "node_modules"));
  if (relative(repoRoot, modules).startsWith("..")) shares.push({ hostPath: modules });
  return shares;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The guest port the relay to the node service's socket listens on (forwarded to the host). */
export const NODE_RELAY_PORT = 10100;

export type CsiCallResult =
  { ok: true; response: Record<string, unknown> } | { ok: false; code: string; details: string };

/**
 * The node service (dist/operator/csi/main.js --mode node) in a guest booted with
 * `forwardPorts: [NODE_RELAY_PORT]`, and gRPC calls to it from the host through a relay in the
 * guest (test/support/unix-relay.ts) from that port to its unix socket.
 */
export class GuestCsiNode {
  private client: Record<string, grpc.Client> = {};

  constructor(
    readonly guest: Guest,
    readonly nodeId: string,
  ) {}

  /** Starts the node service and the relay; returns once both serve (node under TCG loads slowly). */
  async start(): Promise<void> {
    await this.guest.run(
      [
        `mkdir -p /run/csi ${NODE_STATE_DIR}`,
        `cd ${q(repoRoot)}`,
        `nohup ${GUEST_NODE} dist/operator/csi/main.js --mode node --endpoint ${NODE_ENDPOINT} ` +
          `--node-id ${q(this.nodeId)} --state-dir ${NODE_STATE_DIR} >${NODE_LOG} 2>&1 &`,
        `echo $! >/run/csi/node.pid`,
        `nohup ${GUEST_NODE} dist/test/support/unix-relay.js ${NODE_RELAY_PORT} ${NODE_SOCKET} >/run/csi/relay.log 2>&1 &`,
        `for i in $(seq 600); do grep -q '"msg":"serving"' ${NODE_LOG} && grep -q relaying /run/csi/relay.log && exit 0;` +
          ` kill -0 $(cat /run/csi/node.pid) || break; sleep 0.5; done`,
        `cat ${NODE_LOG} /run/csi/relay.log; exit 1`,
      ].join("\n"),
      { timeoutMs: 400_000 },
    );
    const clients = csiClients();
    const address = `127.0.0.1:${this.guest.hostPort(NODE_RELAY_PORT)}`;
    this.client = {
      Node: new clients.Node(address, grpc.credentials.createInsecure()),
      Identity: new clients.Identity(address, grpc.credentials.createInsecure()),
    };
  }

  /** The node service's log (JSON lines, one per call). */
  async log(): Promise<string> {
    return await this.guest.run(`cat ${NODE_LOG} 2>/dev/null || true`);
  }

  /** One CSI call to the node service (or its Identity service), as kubelet makes it. */
  call(
    method: string,
    request: object,
    service: "Node" | "Identity" = "Node",
    timeoutMs = 600_000,
  ): Promise<CsiCallResult> {
    const client = this.client[service];
    if (!client) throw new Error("the node service is not started");
    const f = (client as unknown as Record<string, unknown>)[method];
    if (typeof f !== "function") throw new Error(`${service} has no method ${method}`);
    return new Promise<CsiCallResult>((resolve) =>
      (f as (r: object, o: object, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void).call(
        client,
        request,
        { deadline: Date.now() + timeoutMs },
        (e, r) =>
          resolve(
            e
              ? { ok: false, code: grpc.status[e.code] ?? String(e.code), details: e.details }
              : { ok: true, response: r as Record<string, unknown> },
          ),
      ),
    );
  }

  /** A call that must succeed; returns its response. */
  async ok(method: string, request: object): Promise<Record<string, unknown>> {
    const r = await this.call(method, request);
    if (!r.ok) throw new Error(`${method} failed: ${r.code}: ${r.details}`);
    return r.response;
  }

  /** Closes the clients and stops the node service (SIGTERM, as a pod deletion would). */
  async stop(): Promise<void> {
    for (const c of Object.values(this.client)) c.close();
    this.client = {};
    await this.guest.exec(
      "p=$(cat /run/csi/node.pid 2>/dev/null) && kill $p && while kill -0 $p 2>/dev/null; do sleep 0.2; done",
    );
  }
}

/** The node-stage secret the StorageClass hands over: a kubernetes.io/iscsi-chap Secret's keys. */
export function nodeStageSecrets(chap: Chap): Record<string, string> {
  return {
    "node.session.auth.username": chap.user,
    "node.session.auth.password": chap.secret,
    ...(chap.mutualUser && chap.mutualSecret
      ? {
          "node.session.auth.username_in": chap.mutualUser,
          "node.session.auth.password_in": chap.mutualSecret,
        }
      : {}),
  };
}

/**
 * The uid every volume of a PairTargetStore has: the pair runs with the unit serial the operator
 * derives from a HASanTarget's uid, so the controller's own volume_context (its WWID above all)
 * names the pair's LUN exactly as it would name a pair the operator made.
 */
export const PAIR_TARGET_UID = "8f0c2f4e-6c1d-4c6a-9a55-2b7d3e1f9c01";
export const pairSerialArgs = (): string[] => ["--serial", serialFromUid(PAIR_TARGET_UID)];

const key = (r: VolumeRef) => `${r.namespace}/${r.name}`;

/**
 * HASanTargets in memory, each Ready and Synchronized at once and served by the one real pair
 * (its IQN, its portals as the guest reaches them): the controller service decides everything
 * else (names, parameters, idempotency, volume_context) itself.
 */
export class PairTargetStore implements TargetStore {
  private readonly targets = new Map<string, { t: HASanTarget; created: string }>();
  private seq = 0;

  constructor(
    private readonly iqn: string,
    private readonly portals: () => string[],
  ) {}

  async get(ref: VolumeRef): Promise<HASanTarget | undefined> {
    const e = this.targets.get(key(ref));
    return e ? structuredClone(e.t) : undefined;
  }

  async create(m: TargetManifest): Promise<HASanTarget> {
    if (this.targets.has(key(m.metadata))) throw new KubeApiError(409, "AlreadyExists", "exists", {});
    const now = new Date().toISOString();
    const c = (type: string) => ({
      type,
      status: "True" as const,
      reason: "BothNodesWorking",
      message: "both nodes Working",
      lastTransitionTime: now,
    });
    const t: HASanTarget = {
      ...structuredClone(m),
      metadata: { ...structuredClone(m.metadata), uid: PAIR_TARGET_UID, resourceVersion: String(++this.seq) },
      status: {
        phase: "Ready",
        iqn: this.iqn,
        portals: this.portals(),
        conditions: [c("Ready"), c("Synchronized")],
      },
    };
    this.targets.set(key(m.metadata), { t, created: now });
    return structuredClone(t);
  }

  async setCapacity(t: HASanTarget, capacity: string): Promise<HASanTarget> {
    const e = this.targets.get(key(t.metadata));
    if (!e) throw new KubeApiError(404, "NotFound", "not found", {});
    e.t.spec.capacity = capacity;
    e.t.metadata.resourceVersion = String(++this.seq);
    return structuredClone(e.t);
  }

  async delete(t: HASanTarget): Promise<void> {
    this.targets.delete(key(t.metadata));
  }

  async list(): Promise<ListedTarget[]> {
    return [...this.targets.values()].map((e) => ({ target: structuredClone(e.t), created: e.created }));
  }

  async reachable(): Promise<boolean> {
    return true;
  }
}

/** The driver's controller service on a loopback TCP port, volumes from `store`. */
export async function startPairController(
  store: TargetStore,
): Promise<{ endpointFromGuest: string; stop: () => Promise<void> }> {
  const log = pino({ level: process.env.HASAN_TEST_LOG ?? "silent" });
  const services = loadCsiServices();
  const port = await freePort();
  const controller = new ControllerService(
    store,
    { defaultNamespace: "csi-sanity", createWaitMs: 30_000, pollMs: 200 },
    log,
  );
  const server: grpc.Server = await serve(
    `tcp://127.0.0.1:${port}`,
    [
      { definition: services.Identity, handlers: identityHandlers("test", async () => true) },
      { definition: services.Controller, handlers: controller.handlers() },
    ],
    log,
  );
  return { endpointFromGuest: `${HOST_FROM_GUEST}:${port}`, stop: () => shutdown(server) };
}
