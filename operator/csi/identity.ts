import { packageVersion } from "../../target/cli-info.js";
import { DRIVER_NAME } from "./driver.js";
import type { Handlers } from "./server.js";

/** The driver's version is the package's. */
export function driverVersion(): string {
  return packageVersion();
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
