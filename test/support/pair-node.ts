/**
 * Runs one pair node over a LUN file with a small HTTP interface, so the pair can be driven
 * by tests without the iSCSI layer:
 *
 *   GET  /status                      ReplicationStatus JSON
 *   GET  /alua                        {a, b} access states
 *   PUT  /data?offset=N[&fua=1]       body: bytes to write          → 204
 *   GET  /data?offset=N&length=M      → the bytes
 *   POST /unmap?offset=N&length=M     → 204
 *   POST /caw?offset=N                body: expected ‖ new bytes     → {"result": -1 | mismatch offset}
 *   POST /flush                       → 204
 *   POST /split-brain/resolve         {"discard":"a"|"b"}            → {"message"}
 *
 * Unavailable I/O answers 503 with {"error", "kind"}. Prints `PAIR-NODE-READY {"http":PORT}` once serving.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";
import { z } from "zod";
import { createLogger } from "../../target/log.js";
import { FileBlockDevice } from "../../target/store/file-device.js";
import { metadataFiles } from "../../target/store/metadata-files.js";
import { DeviceUnavailableError } from "../../target/store/block-device.js";
import { startPairNode, type PairNode } from "../../target/replication/pair.js";
import { LinkProtectionSchema } from "../../target/replication/protocol.js";
import { createWitness, parseWitnessSpec } from "../../target/replication/witness.js";

const hostPort = z
  .string()
  .regex(/^[0-9.]+:\d+$/)
  .transform((s) => {
    const [host, port] = s.split(":") as [string, string];
    return { host, port: Number(port) };
  });
const int = z.coerce.number().int().nonnegative();

const ArgsSchema = z.object({
  node: z.enum(["a", "b"]),
  lun: z.string().min(1),
  size: int,
  peer: hostPort,
  listen: hostPort,
  secretFile: z.string().min(1),
  witness: z.string().default("none"),
  http: hostPort,
  regionSize: int.optional(),
  resyncRate: int.optional(),
  heartbeatMs: int.optional(),
  peerTimeoutMs: int.optional(),
  records: LinkProtectionSchema.optional(),
});

const { values } = parseArgs({
  options: {
    node: { type: "string" },
    lun: { type: "string" },
    size: { type: "string" },
    peer: { type: "string" },
    listen: { type: "string" },
    "secret-file": { type: "string" },
    witness: { type: "string" },
    http: { type: "string" },
    "region-size": { type: "string" },
    "resync-rate": { type: "string" },
    "heartbeat-ms": { type: "string" },
    "peer-timeout-ms": { type: "string" },
    records: { type: "string" },
  },
});
const args = ArgsSchema.parse({
  node: values.node,
  lun: values.lun,
  size: values.size,
  peer: values.peer,
  listen: values.listen,
  secretFile: values["secret-file"],
  witness: values.witness,
  http: values.http,
  regionSize: values["region-size"],
  resyncRate: values["resync-rate"],
  heartbeatMs: values["heartbeat-ms"],
  peerTimeoutMs: values["peer-timeout-ms"],
  records: values.records,
});

const logger = createLogger("pair-node", { node: args.node });
const local = await FileBlockDevice.open(args.lun, args.size, logger);
const witness = await createWitness(parseWitnessSpec(args.witness), logger);
const pair: PairNode = await startPairNode({
  node: args.node,
  local,
  metadata: metadataFiles(args.lun),
  peer: args.peer,
  listen: args.listen,
  secret: readFileSync(args.secretFile),
  witness,
  logger,
  ...(args.regionSize ? { regionSize: args.regionSize } : {}),
  ...(args.resyncRate ? { resyncRateBytesPerSec: args.resyncRate } : {}),
  ...(args.heartbeatMs ? { heartbeatMs: args.heartbeatMs } : {}),
  ...(args.peerTimeoutMs ? { peerTimeoutMs: args.peerTimeoutMs } : {}),
  ...(args.records ? { linkProtection: args.records } : {}),
});

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const num = (k: string) => int.parse(url.searchParams.get(k));
  const route = `${req.method} ${url.pathname}`;
  const run = async () => {
    const dev = pair.device;
    switch (route) {
      case "GET /status":
        return json(res, 200, pair.status());
      case "GET /alua":
        return json(res, 200, pair.alua());
      case "PUT /data":
        await dev.write(num("offset"), await body(req), { fua: url.searchParams.get("fua") === "1" });
        return res.writeHead(204).end();
      case "GET /data": {
        const data = await dev.read(num("offset"), num("length"));
        return res.writeHead(200, { "content-type": "application/octet-stream" }).end(data);
      }
      case "POST /unmap":
        await dev.unmap(num("offset"), num("length"));
        return res.writeHead(204).end();
      case "POST /caw": {
        const b = await body(req);
        const half = b.length / 2;
        return json(res, 200, {
          result: await dev.compareAndWrite(num("offset"), b.subarray(0, half), b.subarray(half)),
        });
      }
      case "POST /flush":
        await dev.flush();
        return res.writeHead(204).end();
      case "POST /split-brain/resolve": {
        const { discard } = z
          .object({ discard: z.enum(["a", "b"]) })
          .parse(JSON.parse((await body(req)).toString()));
        // As the agent does: a refused resolution is a conflict with the current state.
        const message = await pair.resolveSplitBrain(discard).catch((e: Error) => e);
        if (message instanceof Error) return json(res, 409, { error: message.message });
        return json(res, 200, { message });
      }
      default:
        return json(res, 404, { error: `no route ${route}` });
    }
  };
  run().catch((e: Error) => {
    if (res.headersSent) return;
    if (e instanceof DeviceUnavailableError) json(res, 503, { error: e.message, kind: e.kind });
    else json(res, 500, { error: e.message });
  });
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((r) => server.listen(args.http.port, args.http.host, r));
const addr = server.address();
process.stdout.write(
  `PAIR-NODE-READY ${JSON.stringify({ http: typeof addr === "object" && addr ? addr.port : 0 })}\n`,
);

const stop = async () => {
  server.close();
  await pair.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
