import { pino, type Logger } from "pino";

/** JSON logs on stdout; level from HASAN_LOG_LEVEL (default info). */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: process.env.HASAN_LOG_LEVEL ?? "info", base: { ...bindings } });
}

export type { Logger };
