import { createHash } from "node:crypto";
import type { Server } from "node:http";
import { dirname, join } from "node:path";
import type { Logger } from "./log.js";
import type { ServeConfig } from "./config.js";
import { FileBlockDevice } from "./store/file-device.js";
import { createScsiTarget } from "./scsi/logical-unit.js";
import { LocalUnitStateStore } from "./scsi/unit-state.js";
import { IscsiServer } from "./iscsi/server.js";
import { startAgent } from "./agent/server.js";
import { TargetMetrics } from "./agent/target-metrics.js";
import type { TargetStatus } from "./agent/status-schema.js";

/** A running standalone target: device, SCSI unit, iSCSI portal and agent. */
export interface RunningTarget {
  status(): TargetStatus;
  /** Stops accepting, lets in-flight commands finish, flushes and closes the LUN. */
  stop(): Promise<void>;
}

/** Both nodes of a pair are given the same IQN; the default serial follows from it so they match. */
export function defaultSerial(iqn: string): string {
  return createHash("sha256").update(iqn).digest("hex").slice(0, 16);
}

export async function serveStandalone(config: ServeConfig, logger: Logger): Promise<RunningTarget> {
  const started = Date.now();
  const serial = config.serial ?? defaultSerial(config.iqn);
  const device = await FileBlockDevice.open(config.data, config.size, logger);
  const unitState = await LocalUnitStateStore.open(
    join(dirname(config.data), `${baseName(config.data)}.pr.json`),
    logger,
  );
  const scsi = createScsiTarget({
    device,
    serial,
    blockSize: config.blockSize,
    unitState,
    portGroups: () => [{ id: 1, state: "active/optimized", relativePorts: [1] }],
    logger,
  });
  const metrics = new TargetMetrics();
  const iscsi = new IscsiServer({
    targetName: config.iqn,
    ...(config.alias ? { targetAlias: config.alias } : {}),
    portalGroupTag: 1,
    relativeTargetPort: 1,
    targetPortGroup: 1,
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
    logger,
    onCommandDone: (info) => metrics.commandDone(info),
  });
  await iscsi.listen(config.listen.host, config.listen.port);
  let stopping = false;
  const status = (): TargetStatus => ({
    iqn: config.iqn,
    serial,
    sizeBytes: config.size,
    blockSize: config.blockSize,
    portal: `${config.listen.host}:${iscsi.address().port}`,
    uptimeSeconds: (Date.now() - started) / 1000,
    state: "Standalone",
    sessions: iscsi.sessions(),
    counters: metrics.counters,
    replication: null,
  });
  metrics.watch(status);
  const agent: Server = await startAgent(
    {
      status,
      ready: () =>
        stopping ? { ready: false, reason: "shutting down" } : { ready: true, reason: "serving" },
      metrics: metrics.registry,
      logger,
    },
    config.agentListen.host,
    config.agentListen.port,
  );
  logger.info(
    { iqn: config.iqn, portal: `${config.listen.host}:${config.listen.port}`, size: config.size, serial },
    "target serving",
  );
  return {
    status,
    async stop() {
      stopping = true;
      await iscsi.close({ graceMs: 5000 });
      await device.flush();
      await device.close();
      agent.closeAllConnections();
      await new Promise<void>((r) => agent.close(() => r()));
    },
  };
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
