import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DRIVER_NAME } from "./driver.js";
import type { Handlers } from "./server.js";

/** The version in package.json (three levels up from dist/operator/csi, as from operator/csi/). */
export function driverVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ["../../../package.json", "../../package.json"]) {
    try {
      const v = (JSON.parse(readFileSync(path.resolve(here, rel), "utf8")) as { version?: unknown }).version;
      if (typeof v === "string") return v;
    } catch {
      // try the next place
    }
  }
  return "unknown";
}

/**
 * Identity service. The plugin as a whole has a controller service and grows volumes while in use
 * (the controller patches spec.capacity, the node grows the filesystem online), whichever mode
 * this process runs in.
 */
export function identityHandlers(version: string, ready: () => Promise<boolean>): Handlers {
  return {
    GetPluginInfo: async () => ({ name: DRIVER_NAME, vendor_version: version }),
    GetPluginCapabilities: async () => ({
      capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }, { volume_expansion: { type: "ONLINE" } }],
    }),
    Probe: async () => ({ ready: { value: await ready() } }),
  };
}
