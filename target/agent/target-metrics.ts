import { Counter, CounterFunc, Gauge, Histogram, Registry } from "./metrics.js";
import type { TargetStatus } from "./status-schema.js";

/** The target's metrics and the counters GET /status reports. */
export class TargetMetrics {
  readonly registry = new Registry();
  private readonly commands = this.registry.register(
    new Counter("hasan_target_commands_total", "SCSI commands completed, by kind and outcome"),
  );
  private readonly bytes = this.registry.register(
    new Counter("hasan_target_bytes_total", "Bytes transferred by SCSI reads and writes"),
  );
  private readonly latency = this.registry.register(
    new Histogram(
      "hasan_target_command_duration_seconds",
      "SCSI command latency from receipt to response",
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    ),
  );
  // Series bound once: building label keys per command cost about a tenth of a 4 KiB write.
  private readonly readBytes = this.bytes.bind({ direction: "read" });
  private readonly writeBytes = this.bytes.bind({ direction: "write" });
  private readonly done = {
    read: {
      ok: this.commands.bind({ kind: "read", outcome: "ok" }),
      error: this.commands.bind({ kind: "read", outcome: "error" }),
    },
    write: {
      ok: this.commands.bind({ kind: "write", outcome: "ok" }),
      error: this.commands.bind({ kind: "write", outcome: "error" }),
    },
    other: {
      ok: this.commands.bind({ kind: "other", outcome: "ok" }),
      error: this.commands.bind({ kind: "other", outcome: "error" }),
    },
  };
  private readonly latencyOf = {
    read: this.latency.bind({ kind: "read" }),
    write: this.latency.bind({ kind: "write" }),
    other: this.latency.bind({ kind: "other" }),
  };

  counters: TargetStatus["counters"] = {
    readCommands: 0,
    writeCommands: 0,
    otherCommands: 0,
    readBytes: 0,
    writtenBytes: 0,
    errors: 0,
  };

  commandDone(info: {
    kind: "read" | "write" | "other";
    bytes: number;
    latencyMs: number;
    ok: boolean;
  }): void {
    const c = this.counters;
    if (info.kind === "read") {
      c.readCommands++;
      c.readBytes += info.bytes;
      this.readBytes.inc(info.bytes);
    } else if (info.kind === "write") {
      c.writeCommands++;
      c.writtenBytes += info.bytes;
      this.writeBytes.inc(info.bytes);
    } else {
      c.otherCommands++;
    }
    if (!info.ok) c.errors++;
    this.done[info.kind][info.ok ? "ok" : "error"].inc();
    this.latencyOf[info.kind].observe(info.latencyMs / 1000);
  }

  /**
   * Series read at scrape time from the live status. The node's state is not among them: the
   * operator exports it for every node (hasan_target_node_state), including nodes that cannot
   * answer for themselves.
   */
  watch(
    status: () => TargetStatus,
    verifyTotals?: () => { bytesChecked: number; regionsMismatched: number },
  ): void {
    this.registry.register(
      new Gauge("hasan_target_sessions", "Open iSCSI sessions", () => [
        { labels: {}, value: status().sessions.length },
      ]),
    );
    this.registry.register(
      new Gauge("hasan_target_out_of_sync_bytes", "Bytes the partner may lack", () => [
        { labels: {}, value: status().replication?.outOfSyncBytes ?? 0 },
      ]),
    );
    this.registry.register(
      new CounterFunc(
        "hasan_target_resynced_bytes_total",
        "Bytes this node copied to or received from its partner by resync since it started",
        () => status().replication?.stats.resyncedBytes ?? 0,
      ),
    );
    if (!verifyTotals) return;
    this.registry.register(
      new CounterFunc(
        "hasan_target_verify_checked_bytes_total",
        "Bytes this node compared with its partner by online verify since it started",
        () => verifyTotals().bytesChecked,
      ),
    );
    this.registry.register(
      new CounterFunc(
        "hasan_target_verify_mismatched_regions_total",
        "Regions online verify found different on the two nodes since this node started",
        () => verifyTotals().regionsMismatched,
      ),
    );
    this.registry.register(
      new Gauge("hasan_target_verify_running", "1 while an online verify of the pair runs", () => [
        { labels: {}, value: status().replication?.verify?.state === "running" ? 1 : 0 },
      ]),
    );
  }
}
