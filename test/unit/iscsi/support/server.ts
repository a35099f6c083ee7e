import { pino } from "pino";
import { IscsiServer, type IscsiServerOptions } from "../../../../target/iscsi/server.js";
import { RamDiskTarget } from "./ram-disk-target.js";

export const TARGET = "iqn.2026-11.dev.hasan:unit";

export interface TestServer {
  server: IscsiServer;
  scsi: RamDiskTarget;
  port: number;
  done: { kind: string; bytes: number; latencyMs: number; ok: boolean }[];
  close(): Promise<void>;
}

/** An IscsiServer on 127.0.0.1 (ephemeral port) over a RAM disk. */
export async function startTestServer(
  o: Partial<IscsiServerOptions> = {},
  sizeBytes = 8 * 1024 * 1024,
): Promise<TestServer> {
  const scsi = new RamDiskTarget(sizeBytes);
  const done: TestServer["done"] = [];
  const server = new IscsiServer({
    targetName: TARGET,
    portalGroupTag: 1,
    relativeTargetPort: 1,
    targetPortGroup: 1,
    scsi,
    auth: { allowedInitiators: [] },
    logger: pino({ level: process.env.HASAN_TEST_LOG ?? "silent" }),
    onCommandDone: (i) => done.push(i),
    ...o,
  });
  await server.listen("127.0.0.1", 0);
  return { server, scsi, port: server.address().port, done, close: () => server.close({ graceMs: 200 }) };
}
