import { rm } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { toCsiError } from "./errors.js";

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** Epoch milliseconds by which the caller stops waiting; undefined when it set no deadline. */
  deadline: number | undefined;
  /** Aborted when the caller cancels or its deadline passes. */
  signal: AbortSignal;
}

export type Handler = (request: unknown, ctx: CallContext) => Promise<object>;
export type Handlers = Record<string, Handler>;

export interface ServiceBinding {
  definition: grpc.ServiceDefinition;
  handlers: Handlers;
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const d = call.getDeadline();
  if (d instanceof Date) return d.getTime();
  return Number.isFinite(d) ? d : undefined;
}

/** The volume a request is about, for the log (never the request itself: it may carry secrets). */
function volumeOf(request: unknown): string | undefined {
  const r = request as { volume_id?: unknown; name?: unknown } | null;
  if (typeof r?.volume_id === "string" && r.volume_id) return r.volume_id;
  if (typeof r?.name === "string" && r.name) return r.name;
  return undefined;
}

/** Wraps promise-returning handlers as grpc-js unary handlers: errors become their gRPC status. */
export function unaryImplementation(
  definition: grpc.ServiceDefinition,
  handlers: Handlers,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(definition)) {
    const handler = handlers[method];
    impl[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      if (!handler) {
        callback({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented by this driver` });
        return;
      }
      const started = Date.now();
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort(new Error("call cancelled by the client")));
      const ctx: CallContext = { deadline: deadlineOf(call), signal: abort.signal };
      const volume = volumeOf(call.request);
      handler(call.request, ctx).then(
        (response) => {
          log.info({ method, volume, ms: Date.now() - started }, "ok");
          callback(null, response);
        },
        (e: unknown) => {
          const err = toCsiError(e);
          const level = err.code === grpc.status.INTERNAL ? "error" : "info";
          log[level](
            { method, volume, code: grpc.status[err.code], ms: Date.now() - started, err: err.message },
            "failed",
          );
          callback({ code: err.code, details: err.message });
        },
      );
    };
  }
  return impl;
}

/** unix:///path/csi.sock (or unix:/path) → /path/csi.sock. */
export function socketPath(endpoint: string): string {
  const m = /^unix:(\/\/)?(\/.+)$/.exec(endpoint);
  if (!m) throw new Error(`endpoint must be unix:///absolute/path.sock, not ${endpoint}`);
  return m[2]!;
}

export type Endpoint = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/;

/**
 * unix:///path.sock, or tcp://HOST:PORT with HOST on the loopback (127.x.x.x, [::1], localhost):
 * the CSI API carries node-stage secrets and trusts its caller, so it is never offered to a
 * network. A TCP endpoint serves a process on the same machine that cannot share a socket file,
 * such as a virtual machine whose user-mode network reaches the host's loopback.
 */
export function parseEndpoint(endpoint: string): Endpoint {
  if (endpoint.startsWith("unix:")) return { kind: "unix", path: socketPath(endpoint) };
  const m = /^tcp:\/\/(.+):(\d{1,5})$/.exec(endpoint);
  if (!m)
    throw new Error(`endpoint must be unix:///absolute/path.sock or tcp://127.0.0.1:PORT, not ${endpoint}`);
  const port = Number(m[2]);
  if (!LOOPBACK.test(m[1]!) || port < 1 || port > 65535)
    throw new Error(
      `a tcp endpoint must be a loopback address and a port (tcp://127.0.0.1:PORT), not ${endpoint}`,
    );
  return { kind: "tcp", host: m[1]!, port };
}

/**
 * Serves the bindings on a unix socket (a stale socket file from an earlier run is removed first)
 * or a loopback TCP port.
 */
export async function serve(endpoint: string, bindings: ServiceBinding[], log: Logger): Promise<grpc.Server> {
  const e = parseEndpoint(endpoint);
  if (e.kind === "unix") await rm(e.path, { force: true });
  const server = new grpc.Server();
  for (const b of bindings)
    server.addService(b.definition, unaryImplementation(b.definition, b.handlers, log));
  const address = e.kind === "unix" ? `unix://${e.path}` : `${e.host}:${e.port}`;
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return server;
}

export function shutdown(server: grpc.Server, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
