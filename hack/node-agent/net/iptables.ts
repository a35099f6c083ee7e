import { mustRun, run } from "../exec.js";
import { hookJumps, type RuleSet } from "./service-rules.js";

/** Applies a rule set atomically per table and removes service chains no longer wanted. */
export async function applyRules(rules: RuleSet): Promise<void> {
  for (const [table, builtin, chain] of hookJumps) {
    await run("iptables", ["-t", table, "-N", chain]);
    const present = await run("iptables", ["-t", table, "-C", builtin, "-j", chain]);
    if (present.code !== 0) await mustRun("iptables", ["-t", table, "-I", builtin, "1", "-j", chain]);
  }
  const existing = (await mustRun("iptables", ["-t", "nat", "-S"]))
    .split("\n")
    .filter((l) => l.startsWith("-N HASAN-SVC-"))
    .map((l) => l.slice(3).trim());
  const stale = existing.filter((c) => !rules.serviceChains.includes(c));
  // Declaring a chain in the input flushes it, so stale chains are emptied before they are deleted.
  const nat = rules.nat.replace("*nat\n", `*nat\n${stale.map((c) => `:${c} - [0:0]\n`).join("")}`);
  await mustRun("iptables-restore", ["--noflush"], nat);
  await mustRun("iptables-restore", ["--noflush"], rules.filter);
  for (const c of stale) await run("iptables", ["-t", "nat", "-X", c]);
}

export async function removeRules(): Promise<void> {
  for (const [table, builtin, chain] of hookJumps) {
    while ((await run("iptables", ["-t", table, "-D", builtin, "-j", chain])).code === 0) {
      // remove every copy of the jump
    }
  }
  for (const table of ["nat", "filter"]) {
    const chains = (await run("iptables", ["-t", table, "-S"])).stdout
      .split("\n")
      .filter((l) => l.startsWith("-N HASAN-"))
      .map((l) => l.slice(3).trim());
    for (const c of chains) await run("iptables", ["-t", table, "-F", c]);
    for (const c of chains) await run("iptables", ["-t", table, "-X", c]);
  }
}
