// Pure restart decisions, as the kubelet makes them.

export function shouldRestart(policy: string, exitCode: number): boolean {
  if (policy === "Always") return true;
  if (policy === "OnFailure") return exitCode !== 0;
  return false;
}

/** Crash-loop back-off: 10 s doubling to 5 min; reset after 10 min of running fine. */
export function backoffMs(restarts: number, lastRunMs: number): number {
  if (lastRunMs >= 10 * 60_000) return 0;
  return Math.min(10_000 * 2 ** Math.max(0, restarts - 1), 300_000);
}

/** Exit code and reason reported for a process that ended by code or signal. */
export function exitDetails(
  code: number | null,
  signal: string | null,
): { exitCode: number; reason: string } {
  const signals: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGABRT: 6, SIGSEGV: 11 };
  if (signal) return { exitCode: 128 + (signals[signal] ?? 1), reason: "Error" };
  const exitCode = code ?? 1;
  return { exitCode, reason: exitCode === 0 ? "Completed" : "Error" };
}
