import { createHash } from "node:crypto";
import { promises as fsp, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { Logger } from "./log.js";
import type { ServeConfig } from "./config.js";
import { FileBlockDevice } from "./store/file-device.js";
import { lockDataFile, type DataLock } from "./store/data-lock.js";
import { adoptLegacyPairMetadata } from "./store/metadata-adoption.js";
import { metadataFiles, type MetadataFiles } from "./store/metadata-files.js";
import { createScsiTarget } from "./scsi/logical-unit.js";
import { LocalUnitStateStore, type UnitStateStore } from "./scsi/unit-state.js";
import type { PortGroupInfo } from "./scsi/port-groups.js";
import { IscsiServer } from "./iscsi/server.js";
import { startAgent } from "./agent/server.js";
import { TargetMetrics } from "./agent/target-metrics.js";
import type { TargetStatus } from "./agent/status-schema.js";
import { startPairNode, type PairNode } from "./replication/pair.js";
import { PeerSecrets } from "./replication/peer-secrets.js";
import { createWitness } from "./replication/witness.js";
import { GrowthRefusedError, type GrowthResult } from "./replication/lun-growth.js";
import type { VerifyRequest } from "./replication/verify.js";

/** A running target: device, SCSI unit, iSCSI portal, agent, and on a pair node the replication. */
export interface RunningTarget {
  status(): TargetStatus;
  /** Stops accepting, lets in-flight commands finish, flushes and closes the LUN. */
  stop(): Promise<void>;
}

/** Both nodes of a pair are given the same IQN; the default serial follows from it so they match. */
export function defaultSerial(iqn: string): string {
  return createHash("sha256").update(iqn).digest("hex").slice(0, 16);
}

/** Node a owns target port group 1 and relative port 1, node b group 2 and port 2; a standalone target is a. */
function portNumber(config: ServeConfig): number {
  return config.node === "b" ? 2 : 1;
}

async function startPair(
  config: ServeConfig,
  files: MetadataFiles,
  device: FileBlockDevice,
  logger: Logger,
): Promise<{ pair: PairNode; secrets: PeerSecrets }> {
  if (!config.node || !config.peer || !config.peerListen || !config.peerSecret) {
    throw new Error("pair flags missing"); // parseServeArgs already refuses this
  }
  // The secret file is followed: a rotated Secret is accepted next to the previous value for a while.
  const secrets = new PeerSecrets(Buffer.from(config.peerSecret, "utf8"), { logger });
  if (config.peerSecretPath) secrets.watchFile(config.peerSecretPath);
  const tls =
    config.peerTlsCert && config.peerTlsKey && config.peerTlsCa
      ? {
          cert: readFileSync(config.peerTlsCert),
          key: readFileSync(config.peerTlsKey),
          ca: readFileSync(config.peerTlsCa),
        }
      : undefined;
  const pair = await startPairNode({
    node: config.node,
    local: device,
    metadata: files,
    peer: config.peer,
    listen: config.peerListen,
    secret: secrets,
    ...(tls ? { tls } : {}),
    linkProtection: config.peerRecords,
    witness: await createWitness(config.witness, logger),
    ...(config.resyncRate ? { resyncRateBytesPerSec: config.resyncRate } : {}),
    logger,
  }).catch((e: unknown) => {
    secrets.close();
    throw e;
  });
  return { pair, secrets };
}

/**
 * The size a pair node opens its LUN with: --size, or the LUN file's size when that is larger.
 * A pair's LUN grows while serving (lun-growth.ts) without --size changing, and it never shrinks,
 * so after a restart the file tells the size it grew to.
 */
async function pairLunSize(config: ServeConfig, logger: Logger): Promise<number> {
  let fileSize = 0;
  try {
    fileSize = (await fsp.stat(config.data)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (fileSize <= config.size) return config.size;
  if (fileSize % config.blockSize !== 0) {
    throw new Error(
      `LUN file ${config.data} holds ${fileSize} bytes, not a multiple of the block size ${config.blockSize}`,
    );
  }
  logger.info({ size: config.size, fileSize }, "the LUN grew while serving: serving the LUN file's size");
  return fileSize;
}

/**
 * Starts the target. The data file's lock (data-lock.ts) is taken first, before the data file
 * or any metadata file is opened, and held until `stop()`; throws DataFileLockedError when
 * another process holds it.
 */
export async function serveTarget(config: ServeConfig, logger: Logger): Promise<RunningTarget> {
  const files = metadataFiles(config.data);
  const lock = await lockDataFile(files.lock, config.data, { logger });
  try {
    return await serveLocked(config, files, lock, logger);
  } catch (e) {
    await lock.release().catch(() => undefined);
    throw e;
  }
}

async function serveLocked(
  config: ServeConfig,
  files: MetadataFiles,
  lock: DataLock,
  logger: Logger,
): Promise<RunningTarget> {
  const started = Date.now();
  const serial = config.serial ?? defaultSerial(config.iqn);
  if (config.node) await adoptLegacyPairMetadata(files, logger);
  const size = config.node ? await pairLunSize(config, logger) : config.size;
  const device = await FileBlockDevice.open(config.data, size, logger);
  const paired = config.node ? await startPair(config, files, device, logger) : undefined;
  const pair = paired?.pair;
  const unitState: UnitStateStore = pair
    ? pair.unitState()
    : await LocalUnitStateStore.open(files.reservations, logger);
  const portGroups = (): PortGroupInfo[] =>
    pair ? pair.portGroups() : [{ id: 1, state: "active/optimized", preferred: true, relativePorts: [1] }];
  const scsi = createScsiTarget({
    device: pair ? pair.device : device,
    serial,
    blockSize: config.blockSize,
    unitState,
    portGroups,
    logger,
  });
  if (pair) {
    // READ CAPACITY follows the device; initiators hear of it through CAPACITY DATA HAS CHANGED.
    pair.onGrown(() => scsi.capacityChanged());
    // Initiators learn ALUA changes through a unit attention (2Ah/06h) and re-read the port groups.
    let alua = JSON.stringify(pair.alua());
    pair.onStateChange(() => {
      const now = JSON.stringify(pair.alua());
      if (now !== alua) {
        alua = now;
        // Raised through the pair's shared unit state, which refuses while this node does not
        // serve; initiators then learn the new states from the NOT READY sense instead.
        scsi.asymmetricAccessStateChanged().catch((err: unknown) => {
          logger.info({ err: err instanceof Error ? err.message : String(err) }, "ALUA change not announced");
        });
      }
    });
  }
  const metrics = new TargetMetrics();
  const port = portNumber(config);
  const partnerPortal = config.partnerPortal;
  const iscsi = new IscsiServer({
    targetName: config.iqn,
    ...(config.alias ? { targetAlias: config.alias } : {}),
    portalGroupTag: port,
    relativeTargetPort: port,
    targetPortGroup: port,
    scsi,
    auth: {
      ...(config.chapUser && config.chapSecret
        ? { chap: { user: config.chapUser, secret: config.chapSecret } }
        : {}),
      ...(config.mutualChapUser && config.mutualChapSecret
        ? { mutualChap: { user: config.mutualChapUser, secret: config.mutualChapSecret } }
        : {}),
      allowedInitiators: config.allowInitiator,
    },
    ...(partnerPortal
      ? {
          extraPortals: () => [
            { address: `${partnerPortal.host}:${partnerPortal.port}`, portalGroupTag: 3 - port },
          ],
        }
      : {}),
    connectionLimits: { total: config.maxConnections, perSource: config.maxConnectionsPerSource },
    writeMemory: { target: config.writeMemory, session: config.sessionWriteMemory },
    loginTimeoutMs: config.loginTimeout * 1000,
    allowColdReset: config.allowColdReset,
    logger,
    onCommandDone: (info) => metrics.commandDone(info),
  });
  await iscsi.listen(config.listen.host, config.listen.port);
  let stopping = false;
  const status = (): TargetStatus => {
    const replication = pair ? pair.status() : null;
    return {
      iqn: config.iqn,
      serial,
      sizeBytes: pair ? pair.device.sizeBytes : device.sizeBytes,
      blockSize: config.blockSize,
      portal: `${config.listen.host}:${iscsi.address().port}`,
      uptimeSeconds: (Date.now() - started) / 1000,
      state: replication ? replication.state : "Standalone",
      sessions: iscsi.sessions(),
      counters: metrics.counters,
      replication,
    };
  };
  metrics.watch(status, pair ? () => pair.verifyTotals() : undefined);
  const agent: Server = await startAgent(
    {
      status,
      ready: () => {
        if (stopping) return { ready: false, reason: "shutting down" };
        const r = pair?.status();
        if (r && !r.serving) return { ready: false, reason: `${r.state}: ${r.message}` };
        return { ready: true, reason: r ? `${r.state}: serving` : "serving" };
      },
      disruptionSafe: () => {
        if (stopping) return { safe: false, reason: "shutting down" };
        const r = pair?.status();
        if (!r) return { safe: true, reason: "standalone target" };
        if (r.state === "Working") return { safe: true, reason: "Working: both nodes hold every write" };
        return { safe: false, reason: `${r.state}: ${r.message}` };
      },
      metrics: metrics.registry,
      logger,
      ...(config.agentToken !== undefined ? { token: config.agentToken } : {}),
      ...(pair ? { resolveSplitBrain: (discard: "a" | "b") => pair.resolveSplitBrain(discard) } : {}),
      ...(pair
        ? {
            verify: {
              start: (req: VerifyRequest) => pair.startVerify(req),
              status: () => pair.status().verify!,
            },
          }
        : {}),
      ...(pair
        ? {
            grow: (sizeBytes: number): Promise<GrowthResult> => {
              if (sizeBytes % config.blockSize !== 0) {
                const why = `LUN size ${sizeBytes} is not a multiple of the block size ${config.blockSize}`;
                return Promise.reject(new GrowthRefusedError(why));
              }
              return pair.grow(sizeBytes);
            },
          }
        : {}),
    },
    config.agentListen.host,
    config.agentListen.port,
  );
  logger.info(
    { portal: `${config.listen.host}:${config.listen.port}`, size, serial, pair: !!pair },
    "target serving",
  );
  return {
    status,
    async stop() {
      stopping = true;
      await iscsi.close({ graceMs: 5000 });
      await device.flush();
      // The pair node owns the local device once started and closes it itself.
      if (pair) await pair.close();
      else await device.close();
      paired?.secrets.close();
      agent.closeAllConnections();
      await new Promise<void>((r) => agent.close(() => r()));
      await lock.release();
    },
  };
}
