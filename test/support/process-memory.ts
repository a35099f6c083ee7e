import { readFileSync } from "node:fs";

/** Resident memory of a process now (VmRSS of /proc/<pid>/status), in bytes. */
export function residentBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples a process's resident memory until stopped; `stop` gives the peak seen. */
export function watchResident(pid: number, intervalMs = 25): { peak(): number; stop(): number } {
  let peak = residentBytes(pid);
  const sample = () => {
    try {
      peak = Math.max(peak, residentBytes(pid));
    } catch {
      // the process is gone: the peak so far stands
    }
  };
  const timer = setInterval(sample, intervalMs);
  return {
    peak: () => peak,
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

export const MiB = 1024 * 1024;
