#!/usr/bin/env node
import { helpOrVersion } from "./cli-info.js";
import { ConfigError, parseServeArgs, usage } from "./config.js";
import { createLogger } from "./log.js";
import { installFatalHandlers } from "./process-handlers.js";
import { serveTarget, type RunningTarget } from "./serve.js";
import { DataFileLockedError } from "./store/data-lock.js";

/** hasan-target: `serve` runs one iSCSI target (standalone or one node of an HA pair). */
async function main(argv: string[]): Promise<number> {
  const info = helpOrVersion(argv, {
    name: "hasan-target",
    summary: "an iSCSI target serving one LUN, alone or as one node of an HA pair",
    usage,
  });
  if (info) {
    process.stdout.write(info);
    return 0;
  }
  const [command, ...rest] = argv;
  if (command !== "serve") {
    process.stderr.write(`${command ? `unknown command "${command}"\n` : ""}${usage}\n`);
    return 2;
  }
  let config;
  try {
    config = parseServeArgs(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const logger = createLogger("hasan-target", {
    iqn: config.iqn,
    ...(config.node ? { node: config.node } : {}),
  });
  installFatalHandlers(process, logger);
  let running: RunningTarget;
  try {
    running = await serveTarget(config, logger);
  } catch (e) {
    // Another target serves this data file: one line saying which, and it keeps serving.
    if (e instanceof DataFileLockedError) {
      process.stderr.write(`hasan-target: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info({ signal }, "shutting down");
      running
        .stop()
        .then(resolve)
        .catch((err: unknown) => {
          logger.error({ err }, "shutdown failed");
          resolve();
        });
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  logger.info("stopped");
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `hasan-target: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
