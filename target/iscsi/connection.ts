/**
 * One TCP connection: frames PDUs, runs the login phase, then dispatches full-feature PDUs
 * (SCSI commands and data, NOP, text, task management, logout) and notices dead initiators.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { ScsiTarget } from "../scsi/types.js";
import { sendTargets, type Portal } from "./discovery.js";
import { PduReader, type PduConsumer } from "./framing.js";
import {
  initialLoginState,
  loginStep,
  LoginStatus,
  type LoginConfig,
  type LoginReply,
  type LoginState,
} from "./login.js";
import { negotiate, type TargetPolicy } from "./negotiation.js";
import {
  BHS_LENGTH,
  Flag,
  Op,
  RESERVED_TAG,
  RejectReason,
  TargetOp,
  cmdSN,
  expStatSN,
  flags,
  initHeader,
  isImmediate,
  itt,
  opName,
  opcode,
  word20,
  writeSequence,
} from "./pdu.js";
import {
  ScsiStatus,
  commandDataDestination,
  dataOut,
  dataOutDestination,
  discardPendingWrite,
  expireStalledWrites,
  respondWithStatus,
  startCommand,
  type ReservedWrite,
} from "./scsi-task.js";
import type { Session } from "./session.js";
import { handleTaskManagement } from "./task-management.js";
import { encodeKeyValues, parseKeyValues, splitText, TextAccumulator, type KeyValues } from "./text-keys.js";
import { PduWriter } from "./writer.js";

export type CommandDoneInfo = {
  kind: "read" | "write" | "other";
  bytes: number;
  latencyMs: number;
  ok: boolean;
};

/** What a connection needs from the server that owns it. */
export interface ConnectionHost {
  readonly targetName: string;
  readonly scsi: ScsiTarget;
  readonly policy: TargetPolicy;
  readonly nopIntervalMs: number;
  readonly nopTimeoutMs: number;
  readonly loginTimeoutMs: number;
  /** How long a write may wait for Data-Out the target asked for before it fails. */
  readonly dataOutTimeoutMs: number;
  /** Whether TARGET COLD RESET is honoured (it drops every initiator's connections). */
  readonly allowColdReset: boolean;
  readonly onCommandDone: ((info: CommandDoneInfo) => void) | undefined;
  loginConfig(): LoginConfig;
  /**
   * How long to hold back the answer to a failed authentication from this connection's source,
   * or undefined to close without answering (the source has too many failures queued).
   */
  authFailureDelay(conn: Connection): number | undefined;
  /** false while shutting down */
  accepting(): boolean;
  /** Creates, reinstates or joins the session a completed login asks for. */
  bindSession(
    conn: Connection,
    state: LoginState,
    cmdSN: number,
  ): Promise<Session | { status: number; reason: string }>;
  /** The connection is gone; `session` lost its last connection unless it was kept for reinstatement. */
  connectionClosed(conn: Connection, session: Session | undefined, keepSession: boolean): void;
  portals(conn: Connection): Portal[];
  allSessions(): Iterable<Session>;
  /** TARGET COLD RESET: every connection goes. */
  dropAllConnections(reason: string): void;
}

const enum Phase {
  Login,
  FullFeature,
  LoggingOut,
  Closed,
}

/**
 * Largest data segment accepted before full feature phase: login PDUs are bound by the default
 * MaxRecvDataSegmentLength, since nothing else has been declared yet (RFC 7143 §13.12).
 */
export const LOGIN_MAX_DATA_SEGMENT = 8192;

/** What the connection tells the owner of its receive buffer. */
export interface ReceiveBuffer {
  /** Login is over: reads may use a full-size buffer from now on. */
  grow(): void;
}

/** Stop reading from an initiator that does not read its responses beyond this many queued bytes. */
const SEND_BACKLOG_LIMIT = 64 * 1024 * 1024;

export class Connection implements PduConsumer {
  readonly reader: PduReader;
  readonly writer: PduWriter;
  readonly log: Logger;
  readonly scsi: ScsiTarget;
  readonly onCommandDone: ((info: CommandDoneInfo) => void) | undefined;
  readonly remote: string;
  statSN = 0;
  session: Session | undefined;
  cid = 0;
  /** The reserved buffer a SCSI Command's immediate data went into, picked up by startCommand. */
  pendingWrite: ReservedWrite | undefined;
  closed = false;

  private phase = Phase.Login;
  private login: LoginState = initialLoginState();
  private loginStarted = false;
  private loginBusy = false;
  private readonly loginText = new TextAccumulator();
  private readonly textIn = new TextAccumulator();
  private textOut: { ttt: number; pieces: Buffer[]; next: number } | undefined;
  private tttCounter = 1;
  private rx = 0;
  private rxAtTick = 0;
  private pingTTT: number | undefined;
  private pingTicks = 0;
  private timer: NodeJS.Timeout | undefined;
  private paused = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly host: ConnectionHost,
    readonly socket: Socket,
    logger: Logger,
    private readonly receiveBuffer?: ReceiveBuffer,
  ) {
    this.remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    this.log = logger.child({ remote: this.remote });
    this.scsi = host.scsi;
    this.onCommandDone = host.onCommandDone;
    this.reader = new PduReader(this, LOGIN_MAX_DATA_SEGMENT);
    this.writer = new PduWriter(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on("error", (err) => this.log.debug({ err }, "socket error"));
    socket.on("close", () => void this.terminate("connection closed"));
    this.timer = setTimeout(() => {
      if (this.phase === Phase.Login) {
        this.log.warn("login did not complete in time");
        void this.terminate("login timeout");
      }
    }, host.loginTimeoutMs);
    this.timer.unref();
  }

  /** Still in the login phase (not yet bound to a session). */
  get inLogin(): boolean {
    return this.phase === Phase.Login;
  }

  get allowColdReset(): boolean {
    return this.host.allowColdReset;
  }

  /** Bytes from the socket; `chunk` may be reused by the caller once this returns. */
  receive(chunk: Buffer): void {
    this.rx++;
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.log.error({ err }, "error while handling a PDU; dropping the connection");
      void this.terminate("internal error");
    }
  }

  // ---- PduConsumer ----------------------------------------------------------------------------

  dataDestination(h: Buffer, length: number): Buffer | undefined {
    if (this.phase !== Phase.FullFeature) return undefined;
    const op = opcode(h);
    if (op === Op.dataOut) return dataOutDestination(this, h, length);
    if (op === Op.scsiCommand) return commandDataDestination(this, h, length);
    return undefined;
  }

  pdu(h: Buffer, data: Buffer, inPlace: boolean): void {
    if (this.phase === Phase.FullFeature) {
      this.fullFeaturePdu(h, data, inPlace);
      // a buffer reserved for a command that was refused or dropped goes back
      if (this.pendingWrite) discardPendingWrite(this);
    } else if (this.phase === Phase.Login) {
      if (opcode(h) !== Op.loginRequest) {
        this.log.warn({ op: opName(opcode(h)) }, "non-login PDU during login");
        void this.terminate("protocol error during login");
        return;
      }
      if (this.loginBusy) return;
      this.onLogin(h, data);
    }
  }

  dataDigestError(h: Buffer): void {
    this.log.warn({ op: opName(opcode(h)), itt: itt(h) }, "data digest error");
    discardPendingWrite(this);
    if (this.phase !== Phase.FullFeature) {
      void this.terminate("data digest error during login");
      return;
    }
    if (opcode(h) === Op.dataOut) {
      const task = this.session?.tasks.get(itt(h));
      if (task) void task.abort();
      // the initiator learns of it from the Reject and recovers by aborting the task
    }
    this.reject(h, RejectReason.dataDigestError, "data digest error");
  }

  fatal(reason: string, h: Buffer | undefined): void {
    if (h && this.phase === Phase.Login && opcode(h) === Op.loginRequest && !this.loginBusy) {
      // e.g. a login PDU larger than 8192 bytes: the initiator learns why before the connection ends
      this.loginFailed(h, LoginStatus.initiatorError, reason);
      return;
    }
    this.log.warn(
      { reason, op: h ? opName(opcode(h)) : undefined },
      "unrecoverable framing error; dropping the connection",
    );
    if (h && this.phase === Phase.FullFeature) this.reject(h, RejectReason.protocolError, reason);
    void this.terminate(reason, false, true);
  }

  // ---- full feature phase -----------------------------------------------------------------------

  private fullFeaturePdu(h: Buffer, data: Buffer, inPlace: boolean): void {
    const op = opcode(h);
    const session = this.session!;
    if (
      session.id.sessionType === "Discovery" &&
      op !== Op.nopOut &&
      op !== Op.textRequest &&
      op !== Op.logoutRequest
    ) {
      discardPendingWrite(this);
      const takesSlot = (op === Op.scsiCommand || op === Op.taskManagementRequest) && !isImmediate(h);
      if (takesSlot && session.window.admit(cmdSN(h), false) === "accept") session.window.release(cmdSN(h));
      this.reject(h, RejectReason.protocolError, `${opName(op)} in a discovery session`);
      return;
    }
    switch (op) {
      case Op.scsiCommand: {
        const imm = isImmediate(h);
        const sn = cmdSN(h);
        if (session.window.admit(sn, imm) === "drop") {
          discardPendingWrite(this);
          this.log.debug(
            { cmdSN: sn, exp: session.window.expCmdSN, max: session.window.maxCmdSN },
            "command outside the CmdSN window dropped",
          );
          return;
        }
        if (imm && !session.window.admitImmediate()) {
          discardPendingWrite(this);
          this.log.debug({ itt: itt(h) }, "immediate command refused: every window slot is in use");
          respondWithStatus(this, h, ScsiStatus.taskSetFull);
          return;
        }
        startCommand(this, h, data, inPlace, sn, imm);
        return;
      }
      case Op.dataOut:
        dataOut(this, h, data, inPlace);
        return;
      case Op.nopOut:
        this.onNopOut(h, data);
        return;
      case Op.taskManagementRequest: {
        const imm = isImmediate(h);
        if (session.window.admit(cmdSN(h), imm) === "drop") return;
        handleTaskManagement(this, h, imm).catch((err: unknown) => {
          this.log.error({ err }, "task management failed");
          void this.terminate("task management error");
        });
        return;
      }
      case Op.textRequest:
        this.onText(h, data);
        return;
      case Op.logoutRequest:
        this.onLogout(h).catch((err: unknown) => {
          this.log.error({ err }, "logout failed");
          void this.terminate("logout error");
        });
        return;
      case Op.snackRequest:
        this.reject(h, RejectReason.snackReject, "SNACK not supported at ErrorRecoveryLevel 0");
        return;
      case Op.loginRequest:
        this.reject(h, RejectReason.protocolError, "Login Request in full feature phase");
        void this.terminate("login request in full feature phase", false, true);
        return;
      default:
        this.reject(h, RejectReason.commandNotSupported, `unsupported ${opName(op)}`);
    }
  }

  // ---- login --------------------------------------------------------------------------------------

  private onLogin(h: Buffer, data: Buffer): void {
    const f = flags(h);
    const transit = (f & 0x80) !== 0;
    const more = (f & 0x40) !== 0;
    const csg = (f >> 2) & 3;
    const nsg = f & 3;
    if (!this.loginStarted) {
      this.loginStarted = true;
      this.statSN = expStatSN(h);
    }
    if (transit && more) return this.loginFailed(h, LoginStatus.initiatorError, "T and C bits both set");
    let text: Buffer | undefined;
    let keys: KeyValues;
    try {
      text = this.loginText.add(data, more);
      if (!text) {
        this.sendLoginResponse(h, { transit: false, csg, nsg: 0, keys: [] }, 0, 0);
        return;
      }
      keys = parseKeyValues(text);
    } catch (err) {
      return this.loginFailed(h, LoginStatus.initiatorError, (err as Error).message);
    }
    if (!this.host.accepting())
      return this.loginFailed(h, LoginStatus.serviceUnavailable, "target shutting down");
    const outcome = loginStep(
      this.login,
      {
        transit,
        csg,
        nsg,
        versionMax: h[2]!,
        versionMin: h[3]!,
        isid: h.toString("hex", 8, 14),
        tsih: h.readUInt16BE(14),
        cid: h.readUInt16BE(20),
        keys,
      },
      this.host.loginConfig(),
    );
    if (outcome.kind === "fail") return this.loginFailed(h, outcome.status, outcome.reason);
    this.login = outcome.state;
    this.cid = outcome.state.cid;
    if (outcome.kind === "continue") {
      this.sendLoginResponse(h, outcome.reply, 0, outcome.state.tsih);
      return;
    }
    // complete: bind to a session, then answer with its TSIH
    this.loginBusy = true;
    const header = Buffer.from(h.subarray(0, BHS_LENGTH));
    const sn = cmdSN(h);
    const reply = outcome.reply;
    this.host.bindSession(this, outcome.state, sn).then(
      (result) => {
        this.loginBusy = false;
        if (this.closed) return;
        if (!("window" in result)) return this.loginFailed(header, result.status, result.reason);
        this.session = result;
        this.phase = Phase.FullFeature;
        // the limits this target declared in login apply from now on
        this.reader.maxDataSegment = Math.max(
          LOGIN_MAX_DATA_SEGMENT,
          this.host.policy.maxRecvDataSegmentLength,
        );
        this.receiveBuffer?.grow();
        this.sendLoginResponse(header, reply, 0, result.id.tsih);
        const p = result.params;
        this.writer.headerDigest = this.reader.headerDigest = p.headerDigest === "CRC32C";
        this.writer.dataDigest = this.reader.dataDigest = p.dataDigest === "CRC32C";
        if (this.timer) clearTimeout(this.timer);
        this.timer = setInterval(this.tick, this.host.nopIntervalMs);
        this.timer.unref();
        this.log.info(
          {
            initiator: result.id.initiatorName,
            isid: result.id.isid,
            tsih: result.id.tsih,
            type: result.id.sessionType,
            headerDigest: p.headerDigest,
            dataDigest: p.dataDigest,
            mrdsl: p.maxRecvDataSegmentLength,
          },
          "login complete",
        );
      },
      (err: unknown) => {
        this.loginBusy = false;
        this.log.error({ err }, "session binding failed");
        this.loginFailed(header, LoginStatus.targetError, "internal error");
      },
    );
  }

  private loginFailed(h: Buffer, status: number, reason: string): void {
    this.log.warn(
      { status: `0x${status.toString(16).padStart(4, "0")}`, reason, initiator: this.login.initiatorName },
      "login failed",
    );
    this.phase = Phase.Closed;
    this.reader.stop();
    if (this.timer) clearTimeout(this.timer);
    const answer = (req: Buffer): void => {
      const f = flags(req);
      this.sendLoginResponse(req, { transit: false, csg: (f >> 2) & 3, nsg: 0, keys: [] }, status, 0);
      this.endGracefully();
    };
    if (status !== LoginStatus.authenticationFailure) return answer(h);
    // Each guess at a secret costs time: failures from one source are answered one per interval.
    const delay = this.host.authFailureDelay(this);
    if (delay === undefined) {
      this.log.debug("too many failed logins queued from this source; closing without an answer");
      void this.terminate("authentication failures");
      return;
    }
    const req = Buffer.from(h.subarray(0, BHS_LENGTH));
    setTimeout(() => {
      if (!this.closed) answer(req);
    }, delay).unref();
  }

  /** Half-closes after queued responses; destroys the socket if the initiator never closes its side. */
  private endGracefully(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  private sendLoginResponse(req: Buffer, reply: LoginReply, status: number, tsih: number): void {
    const data = encodeKeyValues(reply.keys);
    const r = this.writer.newHeader();
    initHeader(
      r,
      TargetOp.loginResponse,
      (reply.transit ? 0x80 : 0) | (reply.csg << 2) | reply.nsg,
      data.length,
    );
    r[2] = 0; // version max
    r[3] = 0; // version active
    req.copy(r, 8, 8, 14); // ISID
    r.writeUInt16BE(tsih, 14);
    r.writeUInt32BE(itt(req), 16);
    const sn = cmdSN(req);
    const window = this.session?.window;
    writeSequence(r, this.statSN++, window ? window.expCmdSN : sn, window ? window.maxCmdSN : sn);
    r[36] = status >> 8;
    r[37] = status & 0xff;
    this.writer.send(r, data);
  }

  // ---- NOP ------------------------------------------------------------------------------------

  private onNopOut(h: Buffer, data: Buffer): void {
    const tag = itt(h);
    if (tag === RESERVED_TAG) {
      // the answer to our ping (or an ExpStatSN update): nothing to send back
      if (word20(h) === this.pingTTT) this.pingTTT = undefined;
      return;
    }
    const session = this.session!;
    const imm = isImmediate(h);
    if (session.window.admit(cmdSN(h), imm) === "drop") return;
    if (!imm) session.window.release(cmdSN(h));
    const r = this.writer.newHeader();
    initHeader(r, TargetOp.nopIn, Flag.final, data.length);
    h.copy(r, 8, 8, 16);
    r.writeUInt32BE(tag, 16);
    r.writeUInt32BE(RESERVED_TAG, 20);
    writeSequence(r, this.statSN++, session.window.expCmdSN, session.window.maxCmdSN);
    this.writer.send(r, data.length ? Buffer.from(data) : undefined);
  }

  /** Pings an idle initiator with NOP-In and drops the connection when it does not answer. */
  private readonly tick = (): void => {
    if (this.phase !== Phase.FullFeature) return;
    if (this.session) expireStalledWrites(this.session.tasks.values(), this.host.dataOutTimeoutMs);
    if (this.rx !== this.rxAtTick) {
      this.rxAtTick = this.rx;
      this.pingTTT = undefined;
      this.pingTicks = 0;
      return;
    }
    if (this.pingTTT !== undefined) {
      this.pingTicks++;
      if (this.pingTicks * this.host.nopIntervalMs >= this.host.nopTimeoutMs) {
        this.log.warn("initiator did not answer NOP-In; dropping the connection");
        void this.terminate("NOP-In timeout");
      }
      return;
    }
    const session = this.session!;
    this.pingTTT = this.nextTargetTransferTag();
    this.pingTicks = 0;
    const r = this.writer.newHeader();
    initHeader(r, TargetOp.nopIn, Flag.final, 0);
    r.writeUInt32BE(RESERVED_TAG, 16);
    r.writeUInt32BE(this.pingTTT, 20);
    // a ping carries StatSN without advancing it
    writeSequence(r, this.statSN, session.window.expCmdSN, session.window.maxCmdSN);
    this.writer.send(r);
  };

  // ---- text ---------------------------------------------------------------------------------------

  private onText(h: Buffer, data: Buffer): void {
    const session = this.session!;
    const imm = isImmediate(h);
    if (session.window.admit(cmdSN(h), imm) === "drop") return;
    const release = (): void => {
      if (!imm) session.window.release(cmdSN(h));
    };
    const f = flags(h);
    const ttt = word20(h);
    if (ttt !== RESERVED_TAG) {
      const out = this.textOut;
      if (!out || out.ttt !== ttt) {
        release();
        this.reject(h, RejectReason.invalidPduField, "Text Request with unknown TTT");
        return;
      }
      this.sendTextPiece(h);
      release();
      return;
    }
    this.textOut = undefined;
    let keys: KeyValues;
    try {
      const text = this.textIn.add(data, (f & Flag.continue) !== 0);
      if (!text) {
        // acknowledge a partial request with an empty response
        this.sendText(h, Buffer.alloc(0), false, this.nextTargetTransferTag());
        release();
        return;
      }
      keys = parseKeyValues(text);
    } catch (err) {
      release();
      this.reject(h, RejectReason.invalidPduField, (err as Error).message);
      return;
    }
    const responses: KeyValues = [];
    const rest: KeyValues = [];
    for (const kv of keys) {
      if (kv[0] === "SendTargets") {
        responses.push(
          ...sendTargets(kv[1], session.id.sessionType, this.host.targetName, this.host.portals(this)),
        );
      } else rest.push(kv);
    }
    if (rest.length) {
      const result = negotiate(rest, session.params, this.host.policy, "full-feature");
      session.params = result.params;
      responses.push(...result.responses);
    }
    const pieces = splitText(encodeKeyValues(responses), session.params.maxRecvDataSegmentLength);
    this.textOut = { ttt: pieces.length > 1 ? this.nextTargetTransferTag() : RESERVED_TAG, pieces, next: 0 };
    this.sendTextPiece(h);
    release();
  }

  private sendTextPiece(h: Buffer): void {
    const out = this.textOut!;
    const piece = out.pieces[out.next++]!;
    const last = out.next >= out.pieces.length;
    this.sendText(h, piece, last, last ? RESERVED_TAG : out.ttt);
    if (last) this.textOut = undefined;
  }

  private sendText(req: Buffer, data: Buffer, final: boolean, ttt: number): void {
    const session = this.session!;
    const r = this.writer.newHeader();
    initHeader(r, TargetOp.textResponse, final ? Flag.final : Flag.continue, data.length);
    req.copy(r, 8, 8, 16);
    r.writeUInt32BE(itt(req), 16);
    r.writeUInt32BE(ttt, 20);
    writeSequence(r, this.statSN++, session.window.expCmdSN, session.window.maxCmdSN);
    this.writer.send(r, data);
  }

  // ---- logout ---------------------------------------------------------------------------------------

  private async onLogout(h: Buffer): Promise<void> {
    const session = this.session!;
    const imm = isImmediate(h);
    if (session.window.admit(cmdSN(h), imm) === "drop") return;
    const reason = flags(h) & 0x7f;
    const cid = h.readUInt16BE(20);
    const header = Buffer.from(h.subarray(0, BHS_LENGTH));
    if (!imm) session.window.release(cmdSN(h));
    if (reason === 2) return this.sendLogoutResponse(header, 2);
    if (reason === 1 && cid !== this.cid) return this.sendLogoutResponse(header, 1);
    if (reason > 2) {
      this.reject(header, RejectReason.invalidPduField, `logout reason ${reason}`);
      return;
    }
    this.phase = Phase.LoggingOut;
    this.reader.stop();
    await this.abortAllTasks();
    this.sendLogoutResponse(header, 0);
    this.log.info({ initiator: session.id.initiatorName, tsih: session.id.tsih }, "logout");
    await this.terminate("logout", false, true);
  }

  private sendLogoutResponse(req: Buffer, response: number): void {
    const session = this.session!;
    const r = this.writer.newHeader();
    initHeader(r, TargetOp.logoutResponse, Flag.final, 0);
    r[2] = response;
    r.writeUInt32BE(itt(req), 16);
    writeSequence(r, this.statSN++, session.window.expCmdSN, session.window.maxCmdSN);
    if (response === 0) {
      r.writeUInt16BE(session.params.defaultTime2Wait, 40);
      r.writeUInt16BE(session.params.defaultTime2Retain, 42);
    }
    this.writer.send(r);
  }

  // ---- helpers used by task modules -------------------------------------------------------------

  reject(h: Buffer, reason: number, why: string): void {
    this.log.warn(
      { op: opName(opcode(h)), itt: itt(h), reason: `0x${reason.toString(16)}`, why },
      "PDU rejected",
    );
    if (this.closed || !this.session) return;
    const window = this.session.window;
    const r = this.writer.newHeader();
    initHeader(r, TargetOp.reject, Flag.final, BHS_LENGTH);
    r[2] = reason;
    r.writeUInt32BE(RESERVED_TAG, 16);
    writeSequence(r, this.statSN++, window.expCmdSN, window.maxCmdSN);
    this.writer.send(r, Buffer.from(h.subarray(0, BHS_LENGTH)));
  }

  nextTargetTransferTag(): number {
    const t = this.tttCounter;
    this.tttCounter = this.tttCounter >= 0x7fffffff ? 1 : this.tttCounter + 1;
    return t;
  }

  forgetTask(task: { itt: number }): void {
    const tasks = this.session?.tasks;
    if (tasks && tasks.get(task.itt) === task) tasks.delete(task.itt);
  }

  /** Called after queuing responses: stop reading from an initiator that stopped reading. */
  afterSend(): void {
    if (!this.paused && this.writer.backlog > SEND_BACKLOG_LIMIT) {
      this.paused = true;
      this.socket.pause();
      this.socket.once("drain", () => {
        this.paused = false;
        if (!this.closed) this.socket.resume();
      });
    }
  }

  allSessions(): Iterable<Session> {
    return this.host.allSessions();
  }

  dropAllConnections(reason: string): void {
    this.host.dropAllConnections(reason);
  }

  async abortAllTasks(): Promise<void> {
    const tasks = this.session ? [...this.session.tasks.values()] : [];
    await Promise.all(tasks.map((t) => t.abort()));
  }

  /** Sends an Async Message asking the initiator to log out within `seconds`. */
  requestLogout(seconds: number): void {
    const session = this.session;
    if (this.phase !== Phase.FullFeature || !session) return;
    const r = this.writer.newHeader();
    initHeader(r, TargetOp.asyncMessage, Flag.final, 0);
    r.writeUInt32BE(RESERVED_TAG, 16);
    writeSequence(r, this.statSN++, session.window.expCmdSN, session.window.maxCmdSN);
    r[36] = 1; // AsyncEvent: target requests logout
    r.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.round(seconds))), 42);
    this.writer.send(r);
  }

  get inFlight(): number {
    return this.session ? this.session.tasks.size : 0;
  }

  /**
   * Ends the connection: no more PDUs are read, tasks are aborted (waiting for any backend work in
   * flight) and the host is told. `keepSession` leaves the session for a reinstating connection.
   */
  terminate(reason: string, keepSession = false, flush = false): Promise<void> {
    if (this.closing) return this.closing;
    this.log.debug({ reason }, "connection ending");
    this.closed = true;
    this.phase = Phase.Closed;
    this.reader.stop();
    if (this.timer) clearTimeout(this.timer);
    if (flush) this.endGracefully();
    else this.socket.destroy();
    this.closing = (async () => {
      await this.abortAllTasks();
      this.host.connectionClosed(this, this.session, keepSession);
    })();
    return this.closing;
  }
}
