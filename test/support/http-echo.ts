// A tiny HTTP server that the local cluster runs as a pod (node /app/dist/test/support/http-echo.js).
// It reports who it is, reaches other addresses on request (to test pod networking), reads and
// writes files (to test volumes) and talks to the API server with the in-cluster configuration.
import http from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { z } from "zod";
import { KubeConfig, VersionApi } from "@kubernetes/client-node";

const Args = z.object({ port: z.coerce.number().int().min(1).max(65535) });
const { port } = Args.parse({ port: process.env.PORT ?? process.argv[2] ?? "8080" });

const Query = z.object({
  url: z.string().url().optional(),
  path: z.string().optional(),
  data: z.string().optional(),
});

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { timeout: 5000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("timeout", function (this: http.ClientRequest) {
        this.destroy(new Error("timeout"));
      })
      .on("error", reject);
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://local");
  const q = Query.parse(Object.fromEntries(url.searchParams));
  const reply = (code: number, body: unknown) => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const handle = async () => {
    switch (url.pathname) {
      case "/":
      case "/healthz":
        return reply(200, {
          pod: process.env.POD_NAME ?? process.env.HOSTNAME,
          namespace: process.env.POD_NAMESPACE,
          node: process.env.NODE_NAME,
          ip: process.env.POD_IP,
          message: process.env.MESSAGE,
          pid: process.pid,
        });
      case "/fetch":
        // the body as before, and the status the address answered with
        return reply(200, await fetchText(q.url ?? ""));
      case "/write":
        await writeFile(q.path ?? "", q.data ?? "");
        return reply(200, { ok: true });
      case "/read":
        return reply(200, { data: await readFile(q.path ?? "", "utf8") });
      case "/kube": {
        const kc = new KubeConfig();
        kc.loadFromCluster();
        const v = await kc.makeApiClient(VersionApi).getCode();
        return reply(200, { gitVersion: v.gitVersion });
      }
      default:
        return reply(404, { error: "not found" });
    }
  };
  handle().catch((err: unknown) => reply(500, { error: String(err) }));
});

server.listen(port, "0.0.0.0", () => console.log(JSON.stringify({ msg: "listening", port })));
process.on("SIGTERM", () => {
  console.log(JSON.stringify({ msg: "SIGTERM received; stopping" }));
  server.close();
  process.exit(0);
});
