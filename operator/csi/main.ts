import { setTimeout as sleep } from "node:timers/promises";
import { helpOrVersion } from "../../target/cli-info.js";
import { createLogger } from "../../target/log.js";
import { KubeClient } from "../kit/kube-client.js";
import { ConfigError, parseCsiArgs, usage, type CsiConfig } from "./config.js";
import { ControllerService } from "./controller/service.js";
import { KubeTargetStore } from "./controller/targets.js";
import { DRIVER_NAME } from "./driver.js";
import { driverVersion, identityHandlers } from "./identity.js";
import { FileStagingStore, HostFs } from "./node/host.js";
import { ExecRunner } from "./node/runner.js";
import { nodeHandlers } from "./node/service.js";
import { repairSessions, SESSION_REPAIR_MS } from "./node/repair.js";
import { VolumeLocks } from "./locks.js";
import { loadCsiServices } from "./proto.js";
import { serve, shutdown, type ServiceBinding } from "./server.js";

/** Wiring only: the CSI driver iscsi.hasan.dev, Identity plus Controller or Node on a unix socket. */
async function main(): Promise<void> {
  const info = helpOrVersion(process.argv.slice(2), {
    name: "hasan-csi",
    summary:
      "the CSI driver iscsi.hasan.dev (controller: a HASanTarget per volume; node: iSCSI, multipath, mounts)",
    usage,
  });
  if (info) {
    process.stdout.write(info);
    return;
  }
  let cfg: CsiConfig;
  try {
    cfg = parseCsiArgs(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger("hasan-csi", { mode: cfg.mode, ...(cfg.nodeId ? { node: cfg.nodeId } : {}) });
  const services = loadCsiServices(cfg.proto);
  const version = driverVersion();
  const bindings: ServiceBinding[] = [];
  let client: KubeClient | undefined;
  if (cfg.mode === "controller") {
    client = KubeClient.fromOptionsOrExit({ kubeconfig: cfg.kubeconfig }, log);
    const store = new KubeTargetStore(client, cfg.namespace);
    const controller = new ControllerService(
      store,
      { defaultNamespace: cfg.defaultNamespace, createWaitMs: cfg.createWaitMs, pollMs: cfg.pollMs },
      log,
    );
    bindings.push(
      { definition: services.Identity, handlers: identityHandlers(version, () => store.reachable()) },
      { definition: services.Controller, handlers: controller.handlers() },
    );
  } else {
    const deps = {
      runner: new ExecRunner(undefined, cfg.hostCommands),
      fs: new HostFs(),
      staging: new FileStagingStore(cfg.stateDir),
      sleep: (ms: number) => sleep(ms),
      deviceWaitMs: cfg.deviceWaitMs,
      log,
    };
    const locks = new VolumeLocks();
    bindings.push(
      { definition: services.Identity, handlers: identityHandlers(version, async () => true) },
      { definition: services.Node, handlers: nodeHandlers(deps, cfg.nodeId!, locks) },
    );
    const repair = setInterval(() => {
      repairSessions(deps, locks).catch((e: unknown) =>
        log.warn({ err: (e as Error).message }, "session repair failed"),
      );
    }, SESSION_REPAIR_MS);
    repair.unref();
  }
  const server = await serve(cfg.endpoint, bindings, log);
  log.info({ driver: DRIVER_NAME, version, endpoint: cfg.endpoint }, "serving");
  const stop = async (signal: string) => {
    log.info({ signal }, "shutting down");
    await shutdown(server);
    client?.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
