import type { TargetMetrics } from "../../target/agent/target-metrics.js";
import type { TargetStatus } from "../../target/agent/status-schema.js";

/** A standalone target's agent status for agent tests, with the given sessions. */
export function sampleStatus(metrics: TargetMetrics, sessions: TargetStatus["sessions"] = []): TargetStatus {
  return {
    iqn: "iqn.2026-11.dev.hasan:t1",
    serial: "abc",
    sizeBytes: 1 << 20,
    blockSize: 512,
    portal: "127.0.0.1:3260",
    uptimeSeconds: 1,
    state: "Standalone",
    sessions,
    counters: metrics.counters,
    replication: null,
  };
}
