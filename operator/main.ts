import type { Server } from "node:http";
import { helpOrVersion } from "../target/cli-info.js";
import { createLogger } from "../target/log.js";
import { ConfigError, flagHelp, networkPolicyOptions, parseOperatorArgs, usage } from "./config.js";
import { OperatorMetrics } from "./http/metrics.js";
import { createHttpApp, listen } from "./http/server.js";
import { KubeClient } from "./kit/kube-client.js";
import { LeaderElector } from "./kit/leader-election.js";
import { HASanTargetController } from "./reconcile/controller.js";
import { LivePairReader } from "./webhook/live-pair.js";
import { createWebhookApp, listenTls } from "./webhook/server.js";

/** Wiring only: configuration, caches, leader election, reconcile workers, HTTP and webhook servers. */
async function main(): Promise<void> {
  const info = helpOrVersion(process.argv.slice(2), {
    name: "hasan-operator",
    summary: "reconciles HASanTargets into HA iSCSI target pairs and guards their evictions",
    usage,
    notes: flagHelp,
  });
  if (info) {
    process.stdout.write(info);
    return;
  }
  let cfg;
  try {
    cfg = parseOperatorArgs(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger("hasan-operator", { identity: cfg.identity });
  const client = KubeClient.fromOptionsOrExit({ kubeconfig: cfg.kubeconfig }, log);
  const metrics = new OperatorMetrics();
  client.onResponse = (method, code, resource) =>
    metrics.apiRequests.inc({ method, resource, code: String(code) });
  const controller = new HASanTargetController(
    client,
    {
      namespace: cfg.namespace,
      image: cfg.targetImage,
      agentAddress: cfg.agentAddress,
      steadyPollMs: cfg.statusPollSteadyMs,
      activePollMs: cfg.statusPollActiveMs,
      driftCheckMs: cfg.driftCheckMs,
      identity: cfg.identity,
      workers: cfg.workers,
      allowedTargetImages: cfg.allowedTargetImages,
      networkPolicies: networkPolicyOptions(cfg),
      ...(cfg.targetResources ? { targetResources: cfg.targetResources } : {}),
    },
    log,
    metrics,
  );
  const servers: Server[] = [];
  servers.push(
    await listen(
      createHttpApp({ metrics, ready: () => controller.synced() }),
      cfg.metricsAddr.host,
      cfg.metricsAddr.port,
    ),
  );
  if (cfg.webhookAddr && cfg.webhookCert && cfg.webhookKey) {
    const reader = new LivePairReader(client, controller.agents, cfg.agentAddress, controller.tokens);
    const app = createWebhookApp(reader, log, metrics);
    servers.push(
      await listenTls(app, cfg.webhookAddr.host, cfg.webhookAddr.port, cfg.webhookCert, cfg.webhookKey),
    );
  }
  log.info(
    {
      metrics: cfg.metricsAddr,
      webhook: cfg.webhookAddr,
      namespace: cfg.namespace ?? "(all)",
      allowedTargetImages: cfg.allowedTargetImages,
      networkPolicies: cfg.networkPolicies,
    },
    "starting",
  );
  if (cfg.networkPolicies && !cfg.operatorNamespace)
    log.warn(
      "the pairs' NetworkPolicies admit no pod to the agent port: without --operator-namespace and " +
        "--operator-pod-labels the operator cannot name its own pods",
    );
  await controller.startCaches();
  log.info("caches synced");

  const elector = cfg.leaderElect
    ? new LeaderElector(
        client,
        { namespace: cfg.leaderElectionNamespace, name: cfg.leaderElectionId, identity: cfg.identity },
        log,
      )
    : undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ code }, "shutting down");
    await elector?.stop();
    await controller.stop();
    for (const s of servers) s.close();
    client.close();
    process.exit(code);
  };
  process.on("SIGTERM", () => void shutdown(0));
  process.on("SIGINT", () => void shutdown(0));

  if (elector) {
    elector.run(
      () => {
        metrics.leader.set({}, 1);
        controller.startWorkers();
      },
      () => {
        metrics.leader.set({}, 0);
        // Another replica may already reconcile: stop at once, the process manager restarts us as a candidate.
        log.error("leadership lost; exiting");
        process.exit(1);
      },
    );
  } else {
    metrics.leader.set({}, 1);
    controller.startWorkers();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
