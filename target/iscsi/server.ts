/**
 * The iSCSI target portal: accepts connections, binds logins to sessions (creation,
 * reinstatement), reports sessions and shuts down gracefully.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { z } from "zod";
import type { Logger } from "../log.js";
import { secretProblem } from "../secret-rules.js";
import type { ScsiTarget } from "../scsi/types.js";
import { AuthFailureThrottle } from "./auth-throttle.js";
import { Connection, type CommandDoneInfo, type ConnectionHost } from "./connection.js";
import {
  ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  sourceOf,
  type ConnectionLimitsOptions,
} from "./connection-limits.js";
import { formatPortal, type Portal } from "./discovery.js";
import { LoginStatus, type LoginConfig, type LoginState } from "./login.js";
import { defaultTargetPolicy, type TargetPolicy } from "./negotiation.js";
import { readWith } from "../net/receive-socket.js";
import { Session, SessionRegistry, nexusFor } from "./session.js";
import { DEFAULT_WRITE_MEMORY, WriteMemory, type WriteMemoryLimits } from "./write-memory.js";

/** Per-connection receive buffer once logged in: one read takes up to this much. */
const RECEIVE_BUFFER = 256 * 1024;
/**
 * Receive buffer of connections in login, one for all of them: reads are handled one at a time and
 * the framer copies out whatever outlives a read, so a connection that never logs in costs no
 * buffer of its own.
 */
const LOGIN_RECEIVE_BUFFER = 16 * 1024;
/** Connections refused or evicted are logged at most this often (with counts), not one line each. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface IscsiServerOptions {
  targetName: string;
  targetAlias?: string;
  portalGroupTag: number;
  relativeTargetPort: number;
  targetPortGroup: number;
  scsi: ScsiTarget;
  auth: {
    chap?: { user: string; secret: string };
    mutualChap?: { user: string; secret: string };
    /** empty = all */
    allowedInitiators: string[];
  };
  /** addresses SendTargets reports (host:port) besides the one the initiator connected to */
  extraPortals?: () => { address: string; portalGroupTag: number }[];
  logger: Logger;
  onCommandDone?: (info: CommandDoneInfo) => void;
  /** Idle time before the target pings an initiator with NOP-In (default 10 s). */
  nopIntervalMs?: number;
  /** How long an unanswered ping may stay unanswered before the connection is dropped (default 30 s). */
  nopTimeoutMs?: number;
  /** Time a connection may spend in login (default 10 s). */
  loginTimeoutMs?: number;
  /** Time a write may wait for Data-Out the target asked for before it fails (default 30 s). */
  dataOutTimeoutMs?: number;
  /** Connections held at once, in total and per source address (defaults 1024 and 64). */
  connectionLimits?: ConnectionLimitsOptions;
  /** Bytes of write data buffered at once, for the target and per session (defaults 256 MiB and 64 MiB). */
  writeMemory?: WriteMemoryLimits;
  /** Delay before a failed authentication is answered, and between answers to one source (default 1 s). */
  authFailureDelayMs?: number;
  /** Honour TARGET COLD RESET, which drops every initiator's connections (default: refused). */
  allowColdReset?: boolean;
  /** Commands an initiator may have in flight per session (CmdSN window, default 128). */
  commandWindow?: number;
  /** Overrides of what the target offers in negotiation. */
  policy?: Partial<TargetPolicy>;
  maxSessions?: number;
}

export interface SessionInfo {
  initiator: string;
  isid: string;
  tsih: number;
  remote: string;
  connections: number;
}

const credentials = z.object({
  user: z.string().min(1),
  secret: z.string().superRefine((s, ctx) => {
    const problem = secretProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: `the CHAP secret ${problem}` });
  }),
});
const OptionsSchema = z.object({
  targetName: z.string().regex(/^(iqn\.|eui\.|naa\.)/, "target name must be an iqn., eui. or naa. name"),
  targetAlias: z.string().optional(),
  portalGroupTag: z.number().int().min(1).max(0xffff),
  relativeTargetPort: z.number().int().min(1).max(0xffff),
  targetPortGroup: z.number().int().min(0).max(0xffff),
  auth: z.object({
    chap: credentials.optional(),
    mutualChap: credentials.optional(),
    allowedInitiators: z.array(z.string()),
  }),
  nopIntervalMs: z.number().int().positive().optional(),
  nopTimeoutMs: z.number().int().positive().optional(),
  loginTimeoutMs: z.number().int().positive().optional(),
  dataOutTimeoutMs: z.number().int().positive().optional(),
  connectionLimits: z
    .object({ total: z.number().int().min(1), perSource: z.number().int().min(1) })
    .refine((l) => l.perSource <= l.total, "perSource cannot exceed total")
    .optional(),
  writeMemory: z
    .object({ target: z.number().int().min(1), session: z.number().int().min(1) })
    .refine((m) => m.session <= m.target, "the session's write memory cannot exceed the target's")
    .optional(),
  authFailureDelayMs: z.number().int().min(0).optional(),
  allowColdReset: z.boolean().optional(),
  commandWindow: z.number().int().min(1).max(4096).optional(),
  maxSessions: z.number().int().min(1).max(65535).optional(),
});

export class IscsiServer implements ConnectionHost {
  readonly targetName: string;
  readonly scsi: ScsiTarget;
  readonly policy: TargetPolicy;
  readonly nopIntervalMs: number;
  readonly nopTimeoutMs: number;
  readonly loginTimeoutMs: number;
  readonly dataOutTimeoutMs: number;
  readonly allowColdReset: boolean;
  readonly onCommandDone: ((info: CommandDoneInfo) => void) | undefined;
  /** Write data buffered by all sessions. */
  readonly writeMemory: WriteMemory;
  private readonly log: Logger;
  private readonly limits: ConnectionLimits;
  private readonly sourceOfConn = new Map<Connection, string>();
  private readonly authThrottle: AuthFailureThrottle;
  private refused = { source: 0, total: 0, evicted: 0, loggedAt: 0 };
  private readonly loginReceive = Buffer.allocUnsafeSlow(LOGIN_RECEIVE_BUFFER);
  private readonly server: Server;
  private readonly registry: SessionRegistry;
  private readonly connections = new Set<Connection>();
  private readonly windowSize: number;
  private readonly loginCfg: LoginConfig;
  private shuttingDown = false;
  private bound: { host: string; port: number } | undefined;

  constructor(private readonly o: IscsiServerOptions) {
    OptionsSchema.parse(o);
    if (o.auth.mutualChap && !o.auth.chap)
      throw new Error("mutual CHAP needs initiator CHAP credentials too");
    if (o.auth.mutualChap && o.auth.chap && o.auth.mutualChap.secret === o.auth.chap.secret)
      throw new Error("the mutual CHAP secret must differ from the initiator's CHAP secret");
    this.targetName = o.targetName;
    this.scsi = o.scsi;
    this.log = o.logger.child({ component: "iscsi" });
    this.policy = { ...defaultTargetPolicy(), ...o.policy };
    this.nopIntervalMs = o.nopIntervalMs ?? 10_000;
    this.nopTimeoutMs = o.nopTimeoutMs ?? 30_000;
    this.loginTimeoutMs = o.loginTimeoutMs ?? 10_000;
    this.dataOutTimeoutMs = o.dataOutTimeoutMs ?? 30_000;
    this.allowColdReset = o.allowColdReset ?? false;
    this.onCommandDone = o.onCommandDone;
    this.writeMemory = new WriteMemory(o.writeMemory ?? DEFAULT_WRITE_MEMORY);
    this.limits = new ConnectionLimits(o.connectionLimits ?? DEFAULT_CONNECTION_LIMITS);
    this.authThrottle = new AuthFailureThrottle(o.authFailureDelayMs ?? 1000, this.loginTimeoutMs);
    this.windowSize = o.commandWindow ?? 128;
    this.registry = new SessionRegistry(o.maxSessions ?? 1024);
    this.loginCfg = {
      targetName: o.targetName,
      targetAlias: o.targetAlias,
      portalGroupTag: o.portalGroupTag,
      chap: o.auth.chap ? { initiator: o.auth.chap, target: o.auth.mutualChap } : undefined,
      allowedInitiators: o.auth.allowedInitiators,
      policy: this.policy,
      random: (n) => randomBytes(n),
    };
    this.server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server.on("error", (err) => this.log.error({ err }, "listener error"));
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const a = this.server.address();
        if (a && typeof a === "object") this.bound = { host: a.address, port: a.port };
        this.log.info(
          { portal: formatPortal(host, this.address().port), target: this.targetName },
          "iSCSI portal listening",
        );
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    if (!this.bound) throw new Error("not listening");
    return this.bound;
  }

  sessions(): SessionInfo[] {
    const out: SessionInfo[] = [];
    for (const s of this.registry.all()) {
      if (s.id.sessionType !== "Normal") continue;
      out.push({
        initiator: s.id.initiatorName,
        isid: s.id.isid,
        tsih: s.id.tsih,
        remote: s.attached?.remote ?? "",
        connections: s.attached ? 1 : 0,
      });
    }
    return out;
  }

  /**
   * Stops accepting, asks initiators to log out, lets in-flight commands finish (up to graceMs),
   * then closes every connection.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    const graceMs = opts.graceMs ?? 5000;
    this.shuttingDown = true;
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.requestLogout(graceMs / 1000);
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.connections].some((c) => c.inFlight > 0 || c.session)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all([...this.connections].map((c) => c.terminate("target shutting down")));
    await listenerClosed;
    this.log.info("iSCSI portal closed");
  }

  // ---- ConnectionHost --------------------------------------------------------------------------

  loginConfig(): LoginConfig {
    return this.loginCfg;
  }

  authFailureDelay(conn: Connection): number | undefined {
    return this.authThrottle.delay(this.sourceOfConn.get(conn) ?? sourceOf(conn.socket.remoteAddress));
  }

  /** Connections held now, all sources together. */
  get connectionCount(): number {
    return this.limits.total;
  }

  accepting(): boolean {
    return !this.shuttingDown;
  }

  portals(conn: Connection): Portal[] {
    const s = conn.socket;
    const own: Portal = {
      address: formatPortal(s.localAddress ?? this.address().host, s.localPort ?? this.address().port),
      portalGroupTag: this.o.portalGroupTag,
    };
    let extra: Portal[] = [];
    try {
      extra = this.o.extraPortals?.() ?? [];
    } catch (err) {
      this.log.warn({ err }, "extraPortals failed");
    }
    return [own, ...extra];
  }

  allSessions(): Iterable<Session> {
    return this.registry.all();
  }

  dropAllConnections(reason: string): void {
    // flushed: the initiator that asked for the cold reset gets its answer before the connection ends
    for (const c of this.connections) void c.terminate(reason, false, true);
  }

  async bindSession(
    conn: Connection,
    state: LoginState,
    cmdSN: number,
  ): Promise<Session | { status: number; reason: string }> {
    const initiatorName = state.initiatorName!;
    if (state.tsih !== 0) {
      const existing = this.registry.get(state.tsih);
      if (!existing || existing.id.initiatorName !== initiatorName || existing.id.isid !== state.isid) {
        return { status: LoginStatus.sessionDoesNotExist, reason: `no session with TSIH ${state.tsih}` };
      }
      if (existing.attached && existing.attached.cid !== state.cid) {
        return { status: LoginStatus.tooManyConnections, reason: "MaxConnections is 1" };
      }
      // connection reinstatement: the old connection's tasks end, the session stays
      if (existing.attached) await existing.attached.terminate("connection reinstatement", true);
      // digests and receive limits are per connection: take what this login negotiated
      existing.params = state.params;
      existing.attached = conn;
      return existing;
    }
    const old = this.registry.findByInitiatorPort(initiatorName, state.isid, state.sessionType);
    if (old) {
      this.log.info(
        { initiator: initiatorName, isid: state.isid, tsih: old.id.tsih },
        "session reinstatement",
      );
      if (old.attached) await old.attached.terminate("session reinstatement");
      else this.endSession(old);
    }
    const tsih = this.registry.allocateTsih();
    if (tsih === undefined) return { status: LoginStatus.outOfResources, reason: "too many sessions" };
    const nexus = nexusFor(initiatorName, state.isid, this.o.relativeTargetPort, this.o.targetPortGroup);
    const session = new Session(
      {
        tsih,
        initiatorName,
        initiatorAlias: state.initiatorAlias,
        isid: state.isid,
        sessionType: state.sessionType,
      },
      nexus,
      state.params,
      cmdSN,
      this.windowSize,
      this.writeMemory.session(),
    );
    session.attached = conn;
    this.registry.add(session);
    if (state.sessionType === "Normal") {
      try {
        this.scsi.nexusCreated(nexus);
      } catch (err) {
        this.log.error({ err }, "nexusCreated failed");
      }
    }
    return session;
  }

  connectionClosed(conn: Connection, session: Session | undefined, keepSession: boolean): void {
    this.connections.delete(conn);
    this.releaseSource(conn);
    if (!session || session.attached !== conn) return;
    session.attached = undefined;
    if (!keepSession) this.endSession(session);
  }

  private endSession(session: Session): void {
    if (this.registry.get(session.id.tsih) !== session) return;
    this.registry.remove(session);
    this.log.info({ initiator: session.id.initiatorName, tsih: session.id.tsih }, "session ended");
    if (session.id.sessionType === "Normal") {
      try {
        this.scsi.nexusLost(session.nexus);
      } catch (err) {
        this.log.error({ err }, "nexusLost failed");
      }
    }
  }

  private accept(socket: Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    const source = sourceOf(socket.remoteAddress);
    let admission = this.limits.admit(source);
    if (admission === "total-full" && this.evictOldestLogin()) admission = this.limits.admit(source);
    if (admission !== "ok") {
      this.refusedConnection(admission === "source-full" ? "source" : "total", source);
      socket.destroy();
      return;
    }
    // reading starts on a later tick, after the connection below exists; the connection reads
    // into the shared login buffer until it has logged in
    const sink: { conn?: Connection } = {};
    let own: Buffer | undefined;
    const reading = readWith(socket, {
      buffer: () => own ?? this.loginReceive,
      onRead: (buf, n) => sink.conn?.receive(Buffer.from(buf.buffer, buf.byteOffset, n)),
    });
    const conn = new Connection(this, reading, this.log, {
      grow: () => {
        own ??= Buffer.allocUnsafeSlow(RECEIVE_BUFFER);
      },
    });
    sink.conn = conn;
    this.connections.add(conn);
    this.sourceOfConn.set(conn, source);
    conn.log.debug("connection accepted");
  }

  /**
   * With every connection slot taken, the longest-waiting connection still in login gives way:
   * connections that never log in cannot keep an initiator that does from reaching the portal.
   */
  private evictOldestLogin(): boolean {
    for (const c of this.connections) {
      if (c.inLogin && !c.closed) {
        this.refused.evicted++;
        this.logRefusals();
        void c.terminate("evicted: connection limit reached while still in login");
        // its slot opens now, not when its tasks have settled
        this.releaseSource(c);
        return true;
      }
    }
    return false;
  }

  private releaseSource(conn: Connection): void {
    const source = this.sourceOfConn.get(conn);
    if (source === undefined) return;
    this.sourceOfConn.delete(conn);
    this.limits.release(source);
  }

  private refusedConnection(kind: "source" | "total", source: string): void {
    this.refused[kind]++;
    this.log.debug({ source, limit: kind }, "connection refused");
    this.logRefusals();
  }

  private logRefusals(): void {
    const now = Date.now();
    if (now - this.refused.loggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    const { source, total, evicted } = this.refused;
    this.log.warn(
      { refusedPerSource: source, refusedTotal: total, evictedInLogin: evicted, ...this.limits.limits },
      "connection limits reached",
    );
    this.refused = { source: 0, total: 0, evicted: 0, loggedAt: now };
  }
}
