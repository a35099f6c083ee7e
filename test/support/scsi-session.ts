import { ScsiClient, cachingPageWce, cdbs, type ScsiResult } from "./scsi-client.js";

/**
 * Block reads and writes over one iSCSI session that reconnects after failures, for load
 * generators that kill and restart targets. A write counts as acknowledged only on GOOD status.
 */
export class ScsiIoError extends Error {
  override name = "ScsiIoError";
}

export class ScsiSession {
  private client: ScsiClient | undefined;
  private connecting: Promise<ScsiClient> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly o: { host?: string; port: () => number; iqn: string; initiator: string; isid?: string },
  ) {}

  /** WRITE(16); `fua` sets Force Unit Access (the data is on the medium when GOOD comes back). */
  write(offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x8a; // WRITE(16)
    if (options.fua) cdb[1] = 0x08;
    cdb.writeBigUInt64BE(BigInt(offset / 512), 2);
    cdb.writeUInt32BE(data.length / 512, 10);
    return this.exclusive(async () => {
      const r = await this.run(cdb, { dataOut: data });
      if (r.status !== 0) throw new ScsiIoError(`WRITE(16) at ${offset}: ${describe(r)}`);
    });
  }

  read(offset: number, length: number): Promise<Buffer> {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x88; // READ(16)
    cdb.writeBigUInt64BE(BigInt(offset / 512), 2);
    cdb.writeUInt32BE(length / 512, 10);
    return this.exclusive(async () => {
      const r = await this.run(cdb, { allocation: length });
      if (r.status !== 0 || r.data.length !== length)
        throw new ScsiIoError(`READ(16) at ${offset}: ${describe(r)}`);
      return r.data;
    });
  }

  synchronizeCache(): Promise<void> {
    const cdb = Buffer.alloc(10);
    cdb[0] = 0x35; // SYNCHRONIZE CACHE(10), whole unit
    return this.exclusive(async () => {
      const r = await this.run(cdb, {});
      if (r.status !== 0) throw new ScsiIoError(`SYNCHRONIZE CACHE: ${describe(r)}`);
    });
  }

  /** The caching page's WCE (MODE SENSE(10); pc 0 current, 3 saved). */
  writeCacheEnabled(pc = 0): Promise<boolean> {
    return this.exclusive(async () => {
      const r = await this.run(cdbs.modeSense10(0x08, pc), { allocation: 255 });
      if (r.status !== 0) throw new ScsiIoError(`MODE SENSE(10): ${describe(r)}`);
      return cachingPageWce(r.data);
    });
  }

  /** Sets the caching page's WCE (MODE SELECT(10)). */
  setWriteCache(enabled: boolean): Promise<void> {
    const params = cdbs.cachingPageParams(enabled);
    return this.exclusive(async () => {
      const r = await this.run(cdbs.modeSelect10(params.length), { dataOut: params });
      if (r.status !== 0) throw new ScsiIoError(`MODE SELECT(10) WCE=${Number(enabled)}: ${describe(r)}`);
    });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  /** Commands run one at a time on the session (the client has no tagging of its own). */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async run(cdb: Buffer, o: { dataOut?: Buffer; allocation?: number }): Promise<ScsiResult> {
    const client = await this.connect();
    try {
      for (let attempt = 0; ; attempt++) {
        const r = await client.command(cdb, o);
        // A unit attention (reset, ALUA change) is reported once; the command itself did not run.
        if (r.status === 0x02 && r.senseKey === 0x06 && attempt < 8) continue;
        return r;
      }
    } catch (e) {
      this.close();
      throw new ScsiIoError(`session lost: ${(e as Error).message}`);
    }
  }

  private async connect(): Promise<ScsiClient> {
    if (this.client) return this.client;
    this.connecting ??= ScsiClient.open({ ...this.o, port: this.o.port() }).finally(() => {
      this.connecting = undefined;
    });
    try {
      this.client = await this.connecting;
      return this.client;
    } catch (e) {
      throw new ScsiIoError(`cannot log in: ${(e as Error).message}`);
    }
  }
}

function describe(r: ScsiResult): string {
  if (r.status === 0) return `short data (${r.data.length} bytes)`;
  const sense =
    r.senseKey === undefined
      ? ""
      : ` sense ${r.senseKey.toString(16)}/${(r.asc ?? 0).toString(16).padStart(2, "0")}/${(r.ascq ?? 0)
          .toString(16)
          .padStart(2, "0")}`;
  return `status 0x${r.status.toString(16)}${sense}`;
}
