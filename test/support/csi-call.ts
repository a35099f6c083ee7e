/**
 * One CSI call from the command line, for a guest that runs the node service (a test on the host
 * cannot reach the guest's unix socket):
 *   node dist/test/support/csi-call.js unix:///run/csi/csi.sock Node NodeStageVolume <request.json
 * Prints one line of JSON: {"ok":true,"response":{...}} or {"ok":false,"code":"NOT_FOUND","details":"..."}.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { csiClients } from "../../operator/csi/proto.js";

export const CsiCallResultSchema = z.union([
  z.object({ ok: z.literal(true), response: z.record(z.string(), z.unknown()) }),
  z.object({ ok: z.literal(false), code: z.string(), details: z.string() }),
]);
export type CsiCallResult = z.infer<typeof CsiCallResultSchema>;

async function main(): Promise<void> {
  const [endpoint, service, method] = process.argv.slice(2);
  const Service = z.enum(["Identity", "Controller", "Node"]).parse(service);
  if (!endpoint || !method)
    throw new Error("usage: csi-call.js ENDPOINT Identity|Controller|Node METHOD <request.json");
  const request = z.record(z.string(), z.unknown()).parse(JSON.parse(readFileSync(0, "utf8") || "{}"));
  const client = new (csiClients()[Service])(endpoint, grpc.credentials.createInsecure());
  const f = (client as unknown as Record<string, unknown>)[method];
  if (typeof f !== "function") throw new Error(`${Service} has no method ${method}`);
  const result = await new Promise<CsiCallResult>((resolve) =>
    (f as (r: object, o: object, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void).call(
      client,
      request,
      { deadline: Date.now() + 600_000 },
      (e, r) =>
        resolve(
          e
            ? { ok: false, code: grpc.status[e.code] ?? String(e.code), details: e.details }
            : { ok: true, response: r as Record<string, unknown> },
        ),
    ),
  );
  client.close();
  process.stdout.write(JSON.stringify(result) + "\n");
}

// A command when run, a schema when imported (test/support/guest-csi.ts parses the line with it).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
