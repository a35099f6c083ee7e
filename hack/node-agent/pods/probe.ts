import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { Container, Probe } from "../kube/schemas.js";
import { run } from "../exec.js";

export type ProbeResult = { ok: true } | { ok: false; message: string };

/** Resolves a probe's port, which may name one of the container's ports. */
export function resolvePort(port: number | string, container: Container): number | undefined {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Runs one probe attempt against the pod's IP (exec probes enter the container's namespaces). */
export async function probeOnce(
  probe: Probe,
  container: Container,
  podIP: string,
  pid: number,
): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port, container);
    if (port === undefined) return { ok: false, message: `unknown port ${probe.httpGet.port}` };
    return httpProbe(
      probe.httpGet.scheme === "HTTPS",
      probe.httpGet.host || podIP,
      port,
      probe.httpGet.path ?? "/",
      Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value])),
      timeoutMs,
    );
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    if (port === undefined) return { ok: false, message: `unknown port ${probe.tcpSocket.port}` };
    return tcpProbe(probe.tcpSocket.host || podIP, port, timeoutMs);
  }
  if (probe.exec?.command?.length) {
    const r = await run(
      "nsenter",
      ["-t", String(pid), "-m", "-n", "-u", "-r", "-w", "--", ...probe.exec.command],
      undefined,
      timeoutMs,
    );
    return r.code === 0
      ? { ok: true }
      : { ok: false, message: `exit ${r.code}: ${(r.stdout + r.stderr).slice(0, 200)}` };
  }
  return { ok: false, message: "probe has no handler" };
}

function httpProbe(
  tls: boolean,
  host: string,
  port: number,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const mod = tls ? https : http;
    const req = mod.request(
      {
        host,
        port,
        path,
        method: "GET",
        headers: { "User-Agent": "kube-probe/1.37", ...headers },
        timeout: timeoutMs,
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(
          code >= 200 && code < 400
            ? { ok: true }
            : { ok: false, message: `HTTP probe failed with statuscode: ${code}` },
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) =>
      resolve({
        ok: false,
        message: `Get "${tls ? "https" : "http"}://${host}:${port}${path}": ${err.message}`,
      }),
    );
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, timeout: timeoutMs });
    sock.on("connect", () => {
      sock.destroy();
      resolve({ ok: true });
    });
    sock.on("timeout", () => {
      sock.destroy();
      resolve({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` });
    });
    sock.on("error", (err) => resolve({ ok: false, message: `dial tcp ${host}:${port}: ${err.message}` }));
  });
}

/** Tracks consecutive results against a probe's thresholds. */
export class ProbeState {
  private successes = 0;
  failures = 0;
  result: boolean;
  lastMessage = "";

  constructor(
    private readonly probe: Probe,
    initial: boolean,
  ) {
    this.result = initial;
  }

  /** Records an attempt; returns true when the overall result flipped. */
  record(r: ProbeResult): boolean {
    const before = this.result;
    if (r.ok) {
      this.failures = 0;
      this.successes++;
      if (this.successes >= (this.probe.successThreshold ?? 1)) this.result = true;
    } else {
      this.successes = 0;
      this.failures++;
      this.lastMessage = r.message;
      if (this.failures >= (this.probe.failureThreshold ?? 3)) this.result = false;
    }
    return before !== this.result;
  }
}
