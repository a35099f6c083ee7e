/**
 * The target's last-resort handlers in a real process: an error no code path caught is logged
 * with pino (level fatal, with its stack) and the process exits with status 1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../support/target-process.js";
import { run } from "../support/processes.js";

const handlers = join(repoRoot, "dist/target/process-handlers.js");
const log = join(repoRoot, "dist/target/log.js");

/** Runs an ES module snippet with the handlers installed as target/main.ts installs them. */
function withHandlers(body: string) {
  const script = `
    import { installFatalHandlers } from ${JSON.stringify(handlers)};
    import { createLogger } from ${JSON.stringify(log)};
    installFatalHandlers(process, createLogger("hasan-target"));
    ${body}
    setTimeout(() => process.exit(0), 2000);
  `;
  return run(process.execPath, ["--input-type=module", "-e", script], { timeoutMs: 20_000 });
}

function fatalLine(stdout: string): { level: number; msg: string; err: { message: string; stack: string } } {
  const line = stdout.split("\n").find((l) => l.includes('"level":60'));
  assert.ok(line, `a fatal log line in ${stdout}`);
  return JSON.parse(line) as { level: number; msg: string; err: { message: string; stack: string } };
}

test("a promise rejection nobody handles is logged by pino at level fatal with its stack, and the process exits with status 1", async () => {
  const r = await withHandlers(`Promise.reject(new Error("lost write acknowledgement"));`);
  assert.equal(r.code, 1, r.stderr);
  const entry = fatalLine(r.stdout);
  assert.equal(entry.msg, "unhandled promise rejection; exiting");
  assert.equal(entry.err.message, "lost write acknowledgement");
  assert.match(entry.err.stack, /Error: lost write acknowledgement/);
});

test("an exception thrown from a callback is logged by pino at level fatal, and the process exits with status 1", async () => {
  const r = await withHandlers(`setTimeout(() => { throw new Error("boom in a timer"); }, 10);`);
  assert.equal(r.code, 1, r.stderr);
  const entry = fatalLine(r.stdout);
  assert.equal(entry.msg, "uncaught exception; exiting");
  assert.equal(entry.err.message, "boom in a timer");
});
