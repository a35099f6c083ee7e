// How a pod on the local cluster runs the echo server (http-echo.ts). It is a test program, not in
// the image: a hostPath volume brings it to the image's /app/dist (where it finds the image's
// node_modules), whichever root the node runs pods from.
import path from "node:path";
import { repoRoot } from "./target-process.js";

export const echoImage = "ghcr.io/hasan-dev/hasan:e2e";
export const echoCodeVolume = {
  name: "echo-code",
  hostPath: { path: path.join(repoRoot, "dist/test/support"), type: "Directory" },
};
export const echoCodeMount = { name: "echo-code", mountPath: "/app/dist/test/support", readOnly: true };
export const echoCommand = ["node", "/app/dist/test/support/http-echo.js"];
