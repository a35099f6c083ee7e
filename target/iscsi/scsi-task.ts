/**
 * One SCSI command through the transport: gathering its Data-Out (immediate, unsolicited and
 * R2T-solicited), executing it on the SCSI layer and returning Data-In and status with residuals.
 */
import type { ScsiResponse, TaskAttribute } from "../scsi/types.js";
import type { Connection } from "./connection.js";
import {
  AhsType,
  Flag,
  RESERVED_TAG,
  TargetOp,
  bufferOffset,
  dataSN,
  flags,
  initHeader,
  itt,
  lunOf,
  parseAhs,
  totalAhsLength,
  word20,
  writeSequence,
} from "./pdu.js";
import { BufferPool } from "../store/buffer-pool.js";
import { isRecyclableRead, recycleReadBuffer } from "../store/read-buffers.js";
import { fixedSense, SenseKey } from "./sense.js";
import type { Session, SessionTask } from "./session.js";

/**
 * Data-Out buffers of finished writes, reused by later writes of the same size. A buffer goes
 * back only after a WRITE finished GOOD, when ScsiTarget.execute has settled (the SCSI layer keeps
 * no reference to dataOut past that, see target/scsi/types.ts).
 */
const writeBuffers = new BufferPool();

/**
 * Largest Expected Data Transfer Length accepted for a write (bounds per-command memory); a
 * session's write memory limit lowers it further.
 */
export const MAX_WRITE_TRANSFER = 64 * 1024 * 1024;

/** SCSI status answered when write memory is short: the session's (TASK SET FULL) or the target's (BUSY). */
export const ScsiStatus = { good: 0x00, checkCondition: 0x02, busy: 0x08, taskSetFull: 0x28 } as const;

/** A write buffer reserved against the session's write memory before its data was accepted. */
export interface ReservedWrite {
  buffer: Buffer;
  reserved: number;
}

function maxWriteTransfer(session: Session): number {
  return Math.min(MAX_WRITE_TRANSFER, session.writeMemory.limit);
}

const EMPTY = Buffer.alloc(0);
const ATTRIBUTES: TaskAttribute[] = [
  "simple",
  "simple",
  "ordered",
  "head-of-queue",
  "aca",
  "simple",
  "simple",
  "simple",
];

const enum TaskState {
  Receiving,
  Executing,
  Done,
  Aborted,
}

interface Burst {
  ttt: number;
  offset: number;
  end: number;
  nextDataSN: number;
}

export class ScsiTask implements SessionTask {
  state = TaskState.Receiving;
  received = 0;
  /** Bytes the initiator sends without R2T (immediate + unsolicited Data-Out). */
  unsolicitedEnd = 0;
  unsolicitedOpen = false;
  unsolicitedDataSN = 0;
  readonly bursts: Burst[] = [];
  nextR2TOffset = 0;
  r2tSN = 0;
  execution: Promise<void> | undefined;
  readonly started = performance.now();

  constructor(
    readonly conn: Connection,
    readonly itt: number,
    readonly lun: number,
    /** The LUN field as received, echoed in responses. */
    readonly lunField: Buffer,
    readonly cdb: Buffer,
    readonly edtl: number,
    readonly read: boolean,
    readonly write: boolean,
    readonly attribute: TaskAttribute,
    readonly cmdSN: number,
    readonly immediate: boolean,
    readonly buffer: Buffer,
    /** Bytes of the session's write memory this task holds until it has finished with `buffer`. */
    private reserved: number,
  ) {}

  /** Last time data arrived for the task or it asked for more (for the Data-Out timeout). */
  lastProgress = performance.now();
  private slotReleased = false;

  /** Waiting for Data-Out the target asked for or the initiator announced. */
  get awaitingData(): boolean {
    return this.state === TaskState.Receiving && (this.bursts.length > 0 || this.unsolicitedOpen);
  }

  abort(): Promise<void> {
    if (this.state === TaskState.Done || this.state === TaskState.Aborted) return Promise.resolve();
    const wasExecuting = this.state === TaskState.Executing;
    this.state = TaskState.Aborted;
    this.conn.forgetTask(this);
    // an aborted task gets no response; its CmdSN slot opens now
    this.releaseSlot();
    if (wasExecuting && this.execution) return this.execution;
    this.releaseMemory();
    return Promise.resolve();
  }

  /** Opens the task's CmdSN window slot again (once). */
  releaseSlot(): void {
    if (this.slotReleased) return;
    this.slotReleased = true;
    const window = this.conn.session?.window;
    if (!window) return;
    if (this.immediate) window.releaseImmediate();
    else window.release(this.cmdSN);
  }

  /** Gives the write memory back once nothing uses `buffer` any more (once). */
  releaseMemory(): void {
    if (this.reserved === 0) return;
    this.conn.session?.writeMemory.release(this.reserved);
    this.reserved = 0;
  }
}

/**
 * Where a SCSI Command's immediate data goes: straight into the write's buffer when the session's
 * write memory can hold the whole transfer (startCommand picks it up from the connection), else
 * nowhere (the framer hands it over in its own buffer and startCommand refuses the command).
 */
export function commandDataDestination(conn: Connection, h: Buffer, length: number): Buffer | undefined {
  const session = conn.session;
  const f = flags(h);
  if (!session || !(f & Flag.write)) return undefined;
  const edtl = word20(h);
  if (edtl > maxWriteTransfer(session) || length > edtl) return undefined;
  if (session.writeMemory.reserve(edtl) !== undefined) return undefined;
  const buffer = writeBuffers.take(edtl);
  conn.pendingWrite = { buffer, reserved: edtl };
  return buffer.subarray(0, length);
}

/** Gives back a write buffer reserved for a command that never became a task. */
export function discardPendingWrite(conn: Connection): void {
  const pending = conn.pendingWrite;
  conn.pendingWrite = undefined;
  if (pending) conn.session?.writeMemory.release(pending.reserved);
}

export function dataOutDestination(conn: Connection, h: Buffer, length: number): Buffer | undefined {
  const task = conn.session?.tasks.get(itt(h));
  if (!(task instanceof ScsiTask) || task.state !== TaskState.Receiving) return undefined;
  const offset = bufferOffset(h);
  if (offset !== task.received || offset + length > task.edtl) return undefined;
  return task.buffer.subarray(offset, offset + length);
}

function cdbOf(h: Buffer): Buffer | string {
  const ahsLen = totalAhsLength(h);
  if (ahsLen === 0) return Buffer.from(h.subarray(32, 48));
  const entries = parseAhs(h.subarray(48, 48 + ahsLen));
  if (typeof entries === "string") return entries;
  const ext = entries.find((e) => e.type === AhsType.extendedCdb);
  if (!ext) return Buffer.from(h.subarray(32, 48));
  return Buffer.concat([h.subarray(32, 48), ext.data]);
}

/** A SCSI Command PDU that passed the CmdSN window. */
export function startCommand(
  conn: Connection,
  h: Buffer,
  data: Buffer,
  inPlace: boolean,
  cmdSN: number,
  immediate: boolean,
): void {
  const session = conn.session!;
  const tag = itt(h);
  const f = flags(h);
  const read = (f & Flag.read) !== 0;
  const write = (f & Flag.write) !== 0;
  const edtl = word20(h);
  const lun = lunOf(h);
  const pending = conn.pendingWrite;
  conn.pendingWrite = undefined;
  const refuse = (): void => {
    if (pending) session.writeMemory.release(pending.reserved);
    releaseSlot(session, cmdSN, immediate);
  };

  if (session.tasks.has(tag)) {
    refuse();
    conn.reject(h, 0x07 /* task in progress */, "ITT already in use");
    return;
  }
  const cdb = cdbOf(h);
  if (typeof cdb === "string") {
    refuse();
    conn.reject(h, 0x09, cdb);
    return;
  }
  let buffer: Buffer = EMPTY;
  let reserved = 0;
  if (write && edtl > 0) {
    if (edtl > maxWriteTransfer(session)) {
      refuse();
      conn.log.warn({ edtl }, "write transfer too large");
      respondWithStatus(conn, h, ScsiStatus.checkCondition, fixedSense(SenseKey.illegalRequest, 0x24, 0x00));
      return;
    }
    if (pending && pending.buffer.length === edtl) {
      buffer = pending.buffer;
      reserved = pending.reserved;
    } else {
      if (pending) session.writeMemory.release(pending.reserved);
      const refusal = session.writeMemory.reserve(edtl);
      if (refusal !== undefined) {
        conn.log.debug(
          { itt: tag, edtl, sessionBytes: session.writeMemory.inUse, limit: refusal },
          "write refused: write memory full",
        );
        releaseSlot(session, cmdSN, immediate);
        respondWithStatus(conn, h, refusal === "session" ? ScsiStatus.taskSetFull : ScsiStatus.busy);
        return;
      }
      buffer = writeBuffers.take(edtl);
      reserved = edtl;
    }
  } else if (pending) {
    session.writeMemory.release(pending.reserved);
  }
  const task = new ScsiTask(
    conn,
    tag,
    lun,
    Buffer.from(h.subarray(8, 16)),
    cdb,
    edtl,
    read,
    write,
    ATTRIBUTES[f & 7]!,
    cmdSN,
    immediate,
    buffer,
    reserved,
  );
  session.tasks.set(tag, task);

  if (data.length > 0) {
    if (
      !write ||
      data.length > edtl ||
      data.length > session.params.firstBurstLength ||
      !session.params.immediateData
    ) {
      failTask(task, fixedSense(SenseKey.abortedCommand, 0x0c, 0x0c), "unexpected immediate data");
      return;
    }
    if (!inPlace) data.copy(buffer, 0);
    task.received = data.length;
  }
  if (!write || edtl === 0) {
    execute(task);
    return;
  }
  const final = (f & Flag.final) !== 0;
  task.unsolicitedEnd = final ? task.received : Math.min(edtl, session.params.firstBurstLength);
  task.unsolicitedOpen = !final && task.received < task.unsolicitedEnd;
  if (!final && session.params.initialR2T) {
    failTask(
      task,
      fixedSense(SenseKey.abortedCommand, 0x0c, 0x0c),
      "unsolicited data announced with InitialR2T=Yes",
    );
    return;
  }
  task.nextR2TOffset = task.unsolicitedEnd;
  if (task.received === edtl) {
    execute(task);
    return;
  }
  if (!task.unsolicitedOpen) issueR2Ts(task);
}

/** A SCSI Data-Out PDU. */
export function dataOut(conn: Connection, h: Buffer, data: Buffer, inPlace: boolean): void {
  const task = conn.session?.tasks.get(itt(h));
  if (!(task instanceof ScsiTask) || task.state !== TaskState.Receiving) {
    // data for a task already answered (e.g. failed early) or aborted: nothing to do
    conn.log.debug({ itt: itt(h) }, "Data-Out for unknown task dropped");
    return;
  }
  const offset = bufferOffset(h);
  const len = data.length;
  const ttt = word20(h);
  const dsn = dataSN(h);
  const final = (flags(h) & Flag.final) !== 0;
  let burst: Burst | undefined;
  if (ttt === RESERVED_TAG) {
    if (!task.unsolicitedOpen || offset + len > task.unsolicitedEnd) {
      failTask(task, fixedSense(SenseKey.abortedCommand, 0x0c, 0x0c), "unexpected unsolicited data");
      return;
    }
    if (dsn !== task.unsolicitedDataSN) {
      failTask(
        task,
        fixedSense(SenseKey.abortedCommand, 0x4b, 0x00),
        `DataSN ${dsn}, expected ${task.unsolicitedDataSN}`,
      );
      return;
    }
    task.unsolicitedDataSN++;
  } else {
    for (const b of task.bursts) if (b.ttt === ttt) burst = b;
    if (!burst) {
      failTask(task, fixedSense(SenseKey.abortedCommand, 0x4b, 0x00), `Data-Out with unknown TTT ${ttt}`);
      return;
    }
    if (dsn !== burst.nextDataSN) {
      failTask(
        task,
        fixedSense(SenseKey.abortedCommand, 0x4b, 0x00),
        `DataSN ${dsn}, expected ${burst.nextDataSN}`,
      );
      return;
    }
    if (offset + len > burst.end || offset < burst.offset) {
      failTask(task, fixedSense(SenseKey.abortedCommand, 0x0c, 0x0d), "Data-Out beyond the R2T");
      return;
    }
    burst.nextDataSN++;
  }
  if (offset !== task.received) {
    failTask(
      task,
      fixedSense(SenseKey.abortedCommand, 0x4b, 0x05),
      `buffer offset ${offset}, expected ${task.received}`,
    );
    return;
  }
  if (!inPlace && len) data.copy(task.buffer, offset);
  task.received += len;
  task.lastProgress = performance.now();

  if (burst) {
    if (task.received === burst.end) {
      task.bursts.splice(task.bursts.indexOf(burst), 1);
    } else if (final) {
      failTask(task, fixedSense(SenseKey.abortedCommand, 0x0c, 0x0d), "burst ended short");
      return;
    }
  } else if (final || task.received === task.unsolicitedEnd) {
    task.unsolicitedOpen = false;
    if (task.received !== task.unsolicitedEnd) {
      failTask(task, fixedSense(SenseKey.abortedCommand, 0x0c, 0x0d), "unsolicited data ended short");
      return;
    }
  }
  if (task.received === task.edtl) {
    execute(task);
    return;
  }
  if (!task.unsolicitedOpen) issueR2Ts(task);
}

function issueR2Ts(task: ScsiTask): void {
  const conn = task.conn;
  const session = conn.session!;
  const p = session.params;
  while (task.bursts.length < p.maxOutstandingR2T && task.nextR2TOffset < task.edtl) {
    const offset = task.nextR2TOffset;
    const len = Math.min(p.maxBurstLength, task.edtl - offset);
    const ttt = conn.nextTargetTransferTag();
    task.bursts.push({ ttt, offset, end: offset + len, nextDataSN: 0 });
    task.nextR2TOffset += len;
    const r = conn.writer.newHeader();
    initHeader(r, TargetOp.r2t, Flag.final, 0);
    task.lunField.copy(r, 8);
    r.writeUInt32BE(task.itt, 16);
    r.writeUInt32BE(ttt, 20);
    writeSequence(r, conn.statSN, session.window.expCmdSN, session.window.maxCmdSN);
    r.writeUInt32BE(task.r2tSN++, 36);
    r.writeUInt32BE(offset, 40);
    r.writeUInt32BE(len, 44);
    conn.writer.send(r);
    task.lastProgress = performance.now();
  }
}

function execute(task: ScsiTask): void {
  const conn = task.conn;
  task.state = TaskState.Executing;
  const session = conn.session!;
  let promise: Promise<ScsiResponse>;
  try {
    promise = conn.scsi.execute({
      nexus: session.nexus,
      lun: task.lun,
      cdb: task.cdb,
      dataOut: task.buffer,
      expectedTransferLength: task.edtl,
      read: task.read,
      write: task.write,
      taskAttribute: task.attribute,
    });
  } catch (e) {
    promise = Promise.reject(e);
  }
  task.execution = promise
    .then(
      (resp) => complete(task, resp),
      (err: unknown) => {
        conn.log.error({ err, cdb: task.cdb.toString("hex") }, "SCSI command failed in the SCSI layer");
        complete(task, { status: 0x02, sense: fixedSense(SenseKey.hardwareError, 0x44, 0x00) });
      },
    )
    .catch((err: unknown) => {
      // a response that cannot be built (e.g. a malformed ScsiResponse) ends the connection, not the process
      conn.log.error({ err }, "could not answer a SCSI command");
      void conn.terminate("internal error");
    })
    // the SCSI layer is done with the buffer, whether the task completed or was aborted meanwhile
    .finally(() => task.releaseMemory());
}

function commandKind(cdb: Buffer): "read" | "write" | "other" {
  switch (cdb[0]) {
    case 0x08:
    case 0x28:
    case 0xa8:
    case 0x88:
      return "read";
    case 0x0a:
    case 0x2a:
    case 0xaa:
    case 0x8a:
    case 0x2e:
    case 0xae:
    case 0x8e:
      return "write";
    default:
      return "other";
  }
}

function complete(task: ScsiTask, resp: ScsiResponse): void {
  if (task.state !== TaskState.Executing) return;
  task.state = TaskState.Done;
  const conn = task.conn;
  conn.forgetTask(task);
  const done = conn.onCommandDone;
  if (done) {
    const kind = commandKind(task.cdb);
    const bytes =
      kind === "read" ? Math.min(resp.dataIn?.length ?? 0, task.edtl) : kind === "write" ? task.edtl : 0;
    done({ kind, bytes, latencyMs: performance.now() - task.started, ok: resp.status === 0 });
  }
  if (conn.closed) return;
  sendResponse(conn, task, resp);
  if (
    resp.status === 0 &&
    task.write &&
    commandKind(task.cdb) === "write" &&
    !sharesMemory(resp.dataIn, task.buffer)
  ) {
    writeBuffers.give(task.buffer);
  }
}

function sharesMemory(a: Buffer | undefined, b: Buffer): boolean {
  return a !== undefined && a.buffer === b.buffer;
}

/** Fails a command during its data phase with CHECK CONDITION; later Data-Out for it is ignored. */
function failTask(task: ScsiTask, sense: Buffer, reason: string): void {
  const conn = task.conn;
  conn.log.warn({ itt: task.itt, reason }, "SCSI command failed in the transport");
  task.state = TaskState.Done;
  conn.forgetTask(task);
  task.releaseMemory();
  sendResponse(conn, task, { status: 0x02, sense });
}

/**
 * Fails the writes of `tasks` that have waited for Data-Out longer than `timeoutMs`, so that an
 * initiator that never sends the data it was asked for does not keep the write memory.
 */
export function expireStalledWrites(
  tasks: Iterable<SessionTask>,
  timeoutMs: number,
  now = performance.now(),
): void {
  for (const t of [...tasks]) {
    if (t instanceof ScsiTask && t.awaitingData && now - t.lastProgress >= timeoutMs) {
      // INITIATOR RESPONSE TIMEOUT
      failTask(t, fixedSense(SenseKey.abortedCommand, 0x4b, 0x06), "no Data-Out in time");
    }
  }
}

function releaseSlot(session: Session, cmdSN: number, immediate: boolean): void {
  if (immediate) session.window.releaseImmediate();
  else session.window.release(cmdSN);
}

/**
 * Answers a command that never became a task (oversized, no memory for its data, no slot for an
 * immediate command) with a bare status, and sense data for CHECK CONDITION. The caller has
 * released any window slot the command held.
 */
export function respondWithStatus(conn: Connection, h: Buffer, status: number, sense?: Buffer): void {
  const session = conn.session!;
  const data = sense ? senseSegment(sense) : EMPTY;
  const r = conn.writer.newHeader();
  initHeader(r, TargetOp.scsiResponse, Flag.final, data.length);
  r[3] = status;
  r.writeUInt32BE(itt(h), 16);
  writeSequence(r, conn.statSN++, session.window.expCmdSN, session.window.maxCmdSN);
  conn.writer.send(r, data);
}

function senseSegment(sense: Buffer): Buffer {
  const data = Buffer.allocUnsafe(2 + sense.length);
  data.writeUInt16BE(sense.length, 0);
  sense.copy(data, 2);
  return data;
}

/**
 * Residual flags and count: how the amount the command produced (Data-In) or asked for
 * (Data-Out per its CDB) compares with the Expected Data Transfer Length.
 */
export function residualOf(edtl: number, produced: number): { flags: number; count: number } {
  if (produced < edtl) return { flags: Flag.underflow, count: edtl - produced };
  if (produced > edtl) return { flags: Flag.overflow, count: produced - edtl };
  return { flags: 0, count: 0 };
}

function producedBytes(task: ScsiTask, resp: ScsiResponse): number {
  if (task.read && resp.dataIn) return resp.dataIn.length;
  if (resp.dataOutLength !== undefined) return resp.dataOutLength;
  if (resp.dataIn) return resp.dataIn.length;
  if (task.write) return task.received;
  return 0;
}

function sendResponse(conn: Connection, task: ScsiTask, resp: ScsiResponse): void {
  const session = conn.session!;
  const window = session.window;
  task.releaseSlot();
  const writer = conn.writer;
  const residual = residualOf(task.edtl, producedBytes(task, resp));
  const dataIn = task.read && resp.dataIn ? resp.dataIn : EMPTY;
  const sendLength = Math.min(dataIn.length, task.edtl);
  const collapse = resp.status === 0 && !resp.sense && sendLength > 0;

  let dataSNCount = 0;
  if (sendLength > 0) {
    const seg = session.params.maxRecvDataSegmentLength;
    const burst = session.params.maxBurstLength;
    let offset = 0;
    while (offset < sendLength) {
      const len = Math.min(seg, sendLength - offset, burst - (offset % burst));
      const end = offset + len;
      const last = end === sendLength;
      const h = writer.newHeader();
      let f = last || end % burst === 0 ? Flag.final : 0;
      if (last && collapse) f |= Flag.status | residual.flags;
      initHeader(h, TargetOp.dataIn, f, len);
      if (last && collapse) h[3] = resp.status;
      h.writeUInt32BE(task.itt, 16);
      h.writeUInt32BE(RESERVED_TAG, 20);
      if (last && collapse) {
        writeSequence(h, conn.statSN++, window.expCmdSN, window.maxCmdSN);
        h.writeUInt32BE(residual.count, 44);
      } else {
        h.writeUInt32BE(0, 24);
        h.writeUInt32BE(window.expCmdSN, 28);
        h.writeUInt32BE(window.maxCmdSN, 32);
      }
      h.writeUInt32BE(dataSNCount++, 36);
      h.writeUInt32BE(offset, 40);
      // The device's pooled read buffer goes back once its last segment has left.
      const sent = last && isRecyclableRead(dataIn) ? () => recycleReadBuffer(dataIn) : undefined;
      writer.send(h, dataIn.subarray(offset, end), sent);
      offset = end;
    }
  }
  if (!collapse) {
    const data = resp.sense && resp.sense.length ? senseSegment(resp.sense) : EMPTY;
    const h = writer.newHeader();
    initHeader(h, TargetOp.scsiResponse, Flag.final | residual.flags, data.length);
    h[2] = 0; // command completed at target
    h[3] = resp.status;
    h.writeUInt32BE(task.itt, 16);
    writeSequence(h, conn.statSN++, window.expCmdSN, window.maxCmdSN);
    h.writeUInt32BE(task.read ? dataSNCount : task.r2tSN, 36);
    h.writeUInt32BE(residual.count, 44);
    writer.send(h, data);
  }
  conn.afterSend();
}
