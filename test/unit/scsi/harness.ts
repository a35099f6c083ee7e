/** A logical unit on a temporary sparse file, driven with raw CDBs as the transport would. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createScsiTarget, type HasanScsiTarget } from "../../../target/scsi/logical-unit.js";
import type { PortGroupInfo } from "../../../target/scsi/port-groups.js";
import type { Nexus, ScsiResponse } from "../../../target/scsi/types.js";
import { LocalUnitStateStore } from "../../../target/scsi/unit-state.js";
import { FileBlockDevice } from "../../../target/store/file-device.js";
import { parseSense } from "../../../target/scsi/sense.js";

export interface Harness {
  target: HasanScsiTarget;
  device: FileBlockDevice;
  store: LocalUnitStateStore;
  blockSize: number;
  blocks: number;
  run(nexus: Nexus, cdb: number[] | Buffer, dataOut?: Buffer, lun?: number): Promise<ScsiResponse>;
  close(): Promise<void>;
}

export function nexus(initiator: string, isid = "400000000001", port = 1): Nexus {
  return {
    id: `${initiator},i,0x${isid}|${port}`,
    initiatorName: initiator,
    isid,
    relativeTargetPort: port,
    targetPortGroup: port,
  };
}

export const A = nexus("iqn.2026-11.dev.hasan:init1");
export const B = nexus("iqn.2026-11.dev.hasan:init2");

export async function makeHarness(
  sizeBytes = 16 * 1024 * 1024,
  blockSize: 512 | 4096 = 512,
  portGroups: () => PortGroupInfo[] = () => [{ id: 1, state: "active/optimized", relativePorts: [1] }],
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "hasan-lu-"));
  const device = await FileBlockDevice.open(join(dir, "lun"), sizeBytes);
  const store = LocalUnitStateStore.inMemory();
  const target = createScsiTarget({
    device,
    serial: "serial-0001",
    blockSize,
    unitState: store,
    portGroups,
    logger: pino({ level: "silent" }),
  });
  return {
    target,
    device,
    store,
    blockSize,
    blocks: sizeBytes / blockSize,
    run(n, cdb, dataOut = Buffer.alloc(0), lun = 0) {
      const c = Buffer.alloc(16);
      Buffer.from(cdb).copy(c);
      return target.execute({
        nexus: n,
        lun,
        cdb: c,
        dataOut,
        expectedTransferLength: dataOut.length,
        read: dataOut.length === 0,
        write: dataOut.length > 0,
        taskAttribute: "simple",
      });
    },
    async close() {
      await device.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs TEST UNIT READY until the nexus has no unit attention left. */
export async function clearUnitAttentions(h: Harness, n: Nexus): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const r = await h.run(n, [0x00]);
    if (r.status === 0) return;
  }
  throw new Error("unit attentions did not clear");
}

export function senseOf(r: ScsiResponse): { key: number; asc: number; ascq: number; information?: number } {
  if (!r.sense) throw new Error(`no sense (status ${r.status})`);
  return parseSense(r.sense);
}

export function u64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

export function read16(lba: number, blocks: number, flags = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x88;
  c[1] = flags;
  u64(c, 2, lba);
  c.writeUInt32BE(blocks, 10);
  return c;
}

export function write16(lba: number, blocks: number, flags = 0): Buffer {
  const c = read16(lba, blocks, flags);
  c[0] = 0x8a;
  return c;
}

export function read10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x28;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export function write10(lba: number, blocks: number, flags = 0): Buffer {
  const c = read10(lba, blocks);
  c[0] = 0x2a;
  c[1] = flags;
  return c;
}

/** PERSISTENT RESERVE OUT with a basic 24-byte parameter list. */
export function prOut(
  serviceAction: number,
  type: number,
  key: bigint,
  saKey: bigint,
  flags = 0,
): { cdb: Buffer; data: Buffer } {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5f;
  cdb[1] = serviceAction;
  cdb[2] = type;
  cdb.writeUInt32BE(24, 5);
  const data = Buffer.alloc(24);
  data.writeBigUInt64BE(key, 0);
  data.writeBigUInt64BE(saKey, 8);
  data[20] = flags;
  return { cdb, data };
}

export function prIn(serviceAction: number, allocationLength = 1024): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb[1] = serviceAction;
  cdb.writeUInt16BE(allocationLength, 7);
  return cdb;
}
