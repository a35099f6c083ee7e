import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseQuantity } from "./quantity.js";
import { secretProblem } from "./secret-rules.js";
import { MIN_SESSION_WRITE_MEMORY } from "./iscsi/write-memory.js";
import { LinkProtectionSchema } from "./replication/protocol.js";

/**
 * The target's command line: `serve` with flags, parsed by node:util and validated with zod so
 * that every mistake is reported with the flag's name and the rule it broke.
 */

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be HOST:PORT (e.g. 127.0.0.1:3260)")
  .transform((s) => {
    const i = s.lastIndexOf(":");
    const host = s.slice(0, i).replace(/^\[|\]$/g, "");
    return { host, port: Number(s.slice(i + 1)) };
  })
  .refine((hp) => hp.port > 0 && hp.port < 65536, "port must be between 1 and 65535");

const iqnLike = z
  .string()
  .regex(
    /^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[^\s]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/,
    "must be an iSCSI name: iqn.YYYY-MM.reversed.domain[:id], eui.<16 hex> or naa.<hex>",
  );

const size = z.string().transform((s, ctx) => {
  try {
    return parseQuantity(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

const secretFile = z.string().transform((path, ctx) => {
  try {
    const secret = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    // RFC 7143 §12.1.3: at least 12 bytes (secret-rules.ts); 16 max for some initiators is not enforced.
    const problem = secretProblem(secret);
    if (problem) ctx.addIssue({ code: "custom", message: `the secret in ${path} ${problem}` });
    return secret;
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `cannot read secret file ${path}: ${(e as Error).message}` });
    return z.NEVER;
  }
});

/** Smallest agent token: the operator's are 32 random bytes as 64 hex characters. */
export const MIN_AGENT_TOKEN_BYTES = 32;

const tokenFile = z.string().transform((path, ctx) => {
  try {
    const token = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    const n = Buffer.byteLength(token, "utf8");
    if (n < MIN_AGENT_TOKEN_BYTES)
      ctx.addIssue({
        code: "custom",
        message: `the token in ${path} is ${n} bytes long; agent tokens must be at least ${MIN_AGENT_TOKEN_BYTES} bytes`,
      });
    else if (/\s/.test(token))
      ctx.addIssue({ code: "custom", message: `the token in ${path} contains white space` });
    return token;
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `cannot read token file ${path}: ${(e as Error).message}` });
    return z.NEVER;
  }
});

/** A whole number given as a flag, within bounds. */
const count = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const witness = z
  .string()
  .regex(/^(none|file:.+|lease:[a-z0-9-]+\/[a-z0-9.-]+)$/, "must be none, file:PATH or lease:NAMESPACE/NAME")
  .transform((w) => {
    if (w === "none") return { kind: "none" as const };
    if (w.startsWith("file:")) return { kind: "file" as const, path: w.slice(5) };
    const [namespace, name] = w.slice(6).split("/") as [string, string];
    return { kind: "lease" as const, namespace, name };
  });

export const ServeConfigSchema = z
  .object({
    data: z
      .string()
      .min(1, "--data FILE is required")
      .refine(
        (p) => !/(^|\/)\.{0,2}$/.test(p),
        "must name a file (its lock and metadata files are named after it)",
      ),
    size,
    iqn: iqnLike,
    listen: hostPort,
    agentListen: hostPort,
    /** every agent endpoint but the probes and /metrics asks for `Authorization: Bearer <token>` */
    agentToken: tokenFile.optional(),
    serial: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,32}$/, "must be 1-32 characters of letters, digits, '.', '_' or '-'")
      .optional(),
    blockSize: z.union([z.literal(512), z.literal(4096)]).default(512),
    chapUser: z.string().min(1).optional(),
    chapSecret: secretFile.optional(),
    mutualChapUser: z.string().min(1).optional(),
    mutualChapSecret: secretFile.optional(),
    allowInitiator: z.array(iqnLike).default([]),
    alias: z.string().optional(),
    // HA pair
    node: z.enum(["a", "b"]).optional(),
    peer: hostPort.optional(),
    peerListen: hostPort.optional(),
    peerSecret: secretFile.optional(),
    /** the path of --peer-secret-file, followed for rotations (peer-secrets.ts) */
    peerSecretPath: z.string().optional(),
    peerTlsCert: z.string().optional(),
    peerTlsKey: z.string().optional(),
    peerTlsCa: z.string().optional(),
    /** what this node asks of the peer link's records (frame-seal.ts) */
    peerRecords: LinkProtectionSchema.default("encrypted"),
    witness: witness.prefault("none"),
    resyncRate: size.optional(),
    /** the partner's iSCSI portal, reported by SendTargets as a second path */
    partnerPortal: hostPort.optional(),
    // limits a client cannot exceed
    maxConnections: count(1, 65535).prefault("1024"),
    maxConnectionsPerSource: count(1, 65535).prefault("64"),
    writeMemory: size.prefault("256Mi"),
    sessionWriteMemory: size.prefault("64Mi"),
    loginTimeout: count(1, 3600).prefault("10"),
    allowColdReset: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const need = (cond: boolean, path: string, message: string) => {
      if (cond) ctx.addIssue({ code: "custom", path: [path], message });
    };
    need(c.size % c.blockSize !== 0, "size", `must be a multiple of the block size (${c.blockSize})`);
    need(c.size < 1024 * 1024, "size", "must be at least 1Mi");
    need(!!c.chapUser !== !!c.chapSecret, "chapUser", "--chap-user and --chap-secret-file go together");
    need(
      !!c.mutualChapUser !== !!c.mutualChapSecret,
      "mutualChapUser",
      "--mutual-chap-user and --mutual-chap-secret-file go together",
    );
    need(!!c.mutualChapUser && !c.chapUser, "mutualChapUser", "mutual CHAP needs one-way CHAP (--chap-user)");
    need(
      !!c.mutualChapSecret && c.mutualChapSecret === c.chapSecret,
      "mutualChapSecret",
      "must differ from --chap-secret-file's secret (an initiator could otherwise reflect the target's answers)",
    );
    need(
      c.maxConnectionsPerSource > c.maxConnections,
      "maxConnectionsPerSource",
      "cannot exceed --max-connections",
    );
    need(
      c.sessionWriteMemory < MIN_SESSION_WRITE_MEMORY,
      "sessionWriteMemory",
      "must be at least 16Mi (the largest write the target announces)",
    );
    need(c.sessionWriteMemory > c.writeMemory, "sessionWriteMemory", "cannot exceed --write-memory");
    const pair = [c.node, c.peer, c.peerListen, c.peerSecret];
    const some = pair.some((v) => v !== undefined);
    need(
      some && pair.some((v) => v === undefined),
      "node",
      "a pair node needs --node, --peer, --peer-listen and --peer-secret-file together",
    );
    const tls = [c.peerTlsCert, c.peerTlsKey, c.peerTlsCa];
    need(
      tls.some((v) => v) && tls.some((v) => !v),
      "peerTlsCert",
      "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together",
    );
  });

export type ServeConfig = z.infer<typeof ServeConfigSchema>;

const flagOptions = {
  data: { type: "string" },
  size: { type: "string" },
  iqn: { type: "string" },
  listen: { type: "string" },
  "agent-listen": { type: "string" },
  "agent-token-file": { type: "string" },
  serial: { type: "string" },
  "block-size": { type: "string" },
  "chap-user": { type: "string" },
  "chap-secret-file": { type: "string" },
  "mutual-chap-user": { type: "string" },
  "mutual-chap-secret-file": { type: "string" },
  "allow-initiator": { type: "string", multiple: true },
  alias: { type: "string" },
  node: { type: "string" },
  peer: { type: "string" },
  "peer-listen": { type: "string" },
  "peer-secret-file": { type: "string" },
  "peer-tls-cert": { type: "string" },
  "peer-tls-key": { type: "string" },
  "peer-tls-ca": { type: "string" },
  "peer-records": { type: "string" },
  witness: { type: "string" },
  "resync-rate": { type: "string" },
  "partner-portal": { type: "string" },
  "max-connections": { type: "string" },
  "max-connections-per-source": { type: "string" },
  "write-memory": { type: "string" },
  "session-write-memory": { type: "string" },
  "login-timeout": { type: "string" },
  "allow-cold-reset": { type: "boolean" },
} as const;

/** Maps schema field names back to the flag a user typed, for error messages. */
const flagOf: Record<string, string> = {
  agentListen: "--agent-listen",
  agentToken: "--agent-token-file",
  blockSize: "--block-size",
  chapUser: "--chap-user",
  chapSecret: "--chap-secret-file",
  mutualChapUser: "--mutual-chap-user",
  mutualChapSecret: "--mutual-chap-secret-file",
  allowInitiator: "--allow-initiator",
  peerListen: "--peer-listen",
  peerSecret: "--peer-secret-file",
  peerTlsCert: "--peer-tls-cert",
  peerTlsKey: "--peer-tls-key",
  peerTlsCa: "--peer-tls-ca",
  peerRecords: "--peer-records",
  resyncRate: "--resync-rate",
  partnerPortal: "--partner-portal",
  maxConnections: "--max-connections",
  maxConnectionsPerSource: "--max-connections-per-source",
  writeMemory: "--write-memory",
  sessionWriteMemory: "--session-write-memory",
  loginTimeout: "--login-timeout",
  allowColdReset: "--allow-cold-reset",
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

export const usage = `usage: hasan-target serve --data FILE --size SIZE --iqn IQN --listen HOST:PORT --agent-listen HOST:PORT
         [--agent-token-file F] [--serial ID] [--block-size 512|4096] [--alias NAME]
         [--chap-user U --chap-secret-file F] [--mutual-chap-user U --mutual-chap-secret-file F]
         [--allow-initiator IQN]...
         [--node a|b --peer HOST:PORT --peer-listen HOST:PORT --peer-secret-file F
          [--peer-tls-cert F --peer-tls-key F --peer-tls-ca F] [--peer-records encrypted|authenticated]
          [--witness none|file:PATH|lease:NAMESPACE/NAME] [--resync-rate BYTES_PER_S]
          [--partner-portal HOST:PORT]]
         [--max-connections N] [--max-connections-per-source N] [--login-timeout SECONDS]
         [--write-memory SIZE] [--session-write-memory SIZE] [--allow-cold-reset]
--peer-records authenticated: records between the nodes are authenticated (altered, injected or
replayed ones are refused) but not encrypted, for about a fifth of the CPU per byte; it takes
effect when both nodes ask for it. The default, encrypted, seals every record (AES-256-GCM).
SIZE accepts bytes or Kubernetes quantities (1Gi, 500Mi).
Limits (defaults): 1024 connections, 64 per source address (IPv4 address or IPv6 /64), 10 s to
log in, write data buffered at once 256Mi for the target and 64Mi per session; TARGET COLD RESET
is refused unless --allow-cold-reset. CHAP and peer secrets are at least 12 bytes.
With --agent-token-file (at least 32 bytes), the agent answers only requests that carry
"Authorization: Bearer <token>", except /healthz, /readyz, /disruption-safe and /metrics.
Beside FILE the target keeps FILE.lock, locked while it runs (a second target on FILE refuses
to start), and its metadata files, all named after FILE.`;

/** Parses `serve` flags; throws ConfigError listing every problem. */
export function parseServeArgs(argv: string[]): ServeConfig {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: flagOptions, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n${usage}`);
  }
  const raw: Record<string, unknown> = {
    data: values.data,
    size: values.size,
    iqn: values.iqn,
    listen: values.listen,
    agentListen: values["agent-listen"],
    agentToken: values["agent-token-file"],
    serial: values.serial,
    blockSize: values["block-size"] === undefined ? undefined : Number(values["block-size"]),
    chapUser: values["chap-user"],
    chapSecret: values["chap-secret-file"],
    mutualChapUser: values["mutual-chap-user"],
    mutualChapSecret: values["mutual-chap-secret-file"],
    allowInitiator: values["allow-initiator"],
    alias: values.alias,
    node: values.node,
    peer: values.peer,
    peerListen: values["peer-listen"],
    peerSecret: values["peer-secret-file"],
    peerSecretPath: values["peer-secret-file"],
    peerTlsCert: values["peer-tls-cert"],
    peerTlsKey: values["peer-tls-key"],
    peerTlsCa: values["peer-tls-ca"],
    peerRecords: values["peer-records"],
    witness: values.witness,
    resyncRate: values["resync-rate"],
    partnerPortal: values["partner-portal"],
    maxConnections: values["max-connections"],
    maxConnectionsPerSource: values["max-connections-per-source"],
    writeMemory: values["write-memory"],
    sessionWriteMemory: values["session-write-memory"],
    loginTimeout: values["login-timeout"],
    allowColdReset: values["allow-cold-reset"],
  };
  const parsed = ServeConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? "");
      const flag = flagOf[key] ?? (key ? `--${key}` : "arguments");
      const message = i.code === "invalid_type" && i.input === undefined ? "is required" : i.message;
      return `  ${flag}: ${message}`;
    });
    throw new ConfigError(`invalid arguments:\n${lines.join("\n")}\n${usage}`);
  }
  return parsed.data;
}
