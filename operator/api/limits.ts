/**
 * spec.limits: what initiators may make one target node hold (the target's own flags, which
 * default to the values in the README's "Limits a client cannot exceed"). Cross-field rules are
 * checked twice: by CEL at admission and by zod in the operator, so a target never gets flags it
 * would refuse to start with.
 */
import { z } from "zod";
import { MIN_SESSION_WRITE_MEMORY } from "../../target/iscsi/write-memory.js";
import { byteQuantity, quantityBytes, quantityBytesOrNaN } from "./quantity.js";

const count = (description: string) => z.int().min(1).max(65535).optional().meta({ description });

export const LimitsSpecSchema = z
  .object({
    maxConnections: count("Connections a node accepts in total (default 1024)."),
    maxConnectionsPerSource: count(
      "Connections a node accepts from one IPv4 address or IPv6 /64 (default 64); at most maxConnections.",
    ),
    writeMemory: byteQuantity(
      "Write data a node buffers at once for all sessions (default 256Mi); beyond it writes get BUSY.",
    ).optional(),
    sessionWriteMemory: byteQuantity(
      "Write data a node buffers at once for one session (default 64Mi, at least 16Mi, at most writeMemory); " +
        "beyond it writes get TASK SET FULL.",
    ).optional(),
    loginTimeoutSeconds: z
      .int()
      .min(1)
      .max(3600)
      .optional()
      .meta({ description: "Time a connection has to complete its login (default 10)." }),
    allowColdReset: z.boolean().optional().meta({
      description:
        "Honour TARGET COLD RESET from any initiator, which drops every initiator's connections (default false).",
    }),
  })
  .superRefine((l, ctx) => {
    if (l.maxConnections !== undefined && l.maxConnectionsPerSource !== undefined) {
      if (l.maxConnectionsPerSource > l.maxConnections)
        ctx.addIssue({
          code: "custom",
          path: ["maxConnectionsPerSource"],
          message: "cannot exceed maxConnections",
        });
    }
    const session = l.sessionWriteMemory === undefined ? undefined : quantityBytesOrNaN(l.sessionWriteMemory);
    const all = l.writeMemory === undefined ? undefined : quantityBytesOrNaN(l.writeMemory);
    if (session !== undefined && session < MIN_SESSION_WRITE_MEMORY)
      ctx.addIssue({
        code: "custom",
        path: ["sessionWriteMemory"],
        message: "must be at least 16Mi (the largest write a target announces)",
      });
    if (session !== undefined && all !== undefined && session > all)
      ctx.addIssue({ code: "custom", path: ["sessionWriteMemory"], message: "cannot exceed writeMemory" });
  })
  .meta({ description: "What initiators may make one target node hold; excess is refused plainly." });

export type LimitsSpec = z.infer<typeof LimitsSpecSchema>;

const q = (expr: string) => `quantity(string(${expr}))`;

/** CEL rules on spec for the cross-field checks above (admission refuses what the operator would). */
export const LIMITS_RULES = [
  {
    rule:
      "!has(self.limits) || !has(self.limits.maxConnections) || !has(self.limits.maxConnectionsPerSource) || " +
      "self.limits.maxConnectionsPerSource <= self.limits.maxConnections",
    message: "spec.limits.maxConnectionsPerSource cannot exceed spec.limits.maxConnections",
    fieldPath: ".limits.maxConnectionsPerSource",
  },
  {
    rule:
      "!has(self.limits) || !has(self.limits.sessionWriteMemory) || " +
      `${q("self.limits.sessionWriteMemory")}.compareTo(quantity('16Mi')) >= 0`,
    message: "spec.limits.sessionWriteMemory must be at least 16Mi",
    fieldPath: ".limits.sessionWriteMemory",
  },
  {
    rule:
      "!has(self.limits) || !has(self.limits.sessionWriteMemory) || !has(self.limits.writeMemory) || " +
      `${q("self.limits.sessionWriteMemory")}.compareTo(${q("self.limits.writeMemory")}) <= 0`,
    message: "spec.limits.sessionWriteMemory cannot exceed spec.limits.writeMemory",
    fieldPath: ".limits.sessionWriteMemory",
  },
];

/** The target's flags for spec.limits (none for what is unset: the target's defaults apply). */
export function limitArgs(l: LimitsSpec | undefined): string[] {
  if (!l) return [];
  const args: string[] = [];
  if (l.maxConnections !== undefined) args.push("--max-connections", String(l.maxConnections));
  if (l.maxConnectionsPerSource !== undefined)
    args.push("--max-connections-per-source", String(l.maxConnectionsPerSource));
  if (l.writeMemory !== undefined) args.push("--write-memory", String(quantityBytes(l.writeMemory)));
  if (l.sessionWriteMemory !== undefined)
    args.push("--session-write-memory", String(quantityBytes(l.sessionWriteMemory)));
  if (l.loginTimeoutSeconds !== undefined) args.push("--login-timeout", String(l.loginTimeoutSeconds));
  if (l.allowColdReset) args.push("--allow-cold-reset");
  return args;
}
