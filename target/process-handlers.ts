/**
 * Last-resort handlers for errors no code path caught: a promise rejection nobody handled, or an
 * exception thrown from a callback. Each is logged with pino, with the rest of the target's
 * structured log, and the process exits with status 1.
 *
 * Exiting rather than logging and going on is deliberate. Such an error means some I/O path ended
 * in a state the code did not plan for (a range lock never released, a write never answered, a
 * replication step half done), and a target that keeps serving in that state could acknowledge
 * writes it has not made durable. A restart is the safe way out: the partner node takes over, the
 * kubelet (or any supervisor) starts the process again, and the dirty bitmap and resync bring the
 * copies back together. It is also what Node does by default; these handlers add the log line.
 */
import type { Logger } from "./log.js";

/** The part of `process` the handlers use. */
export interface ProcessEvents {
  on(event: "unhandledRejection", listener: (reason: unknown) => void): unknown;
  on(event: "uncaughtException", listener: (err: Error) => void): unknown;
}

export function installFatalHandlers(
  proc: ProcessEvents,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  proc.on("unhandledRejection", (reason) => {
    logger.fatal({ err: reason }, "unhandled promise rejection; exiting");
    exit(1);
  });
  proc.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception; exiting");
    exit(1);
  });
}
