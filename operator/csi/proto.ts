import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * csi.proto of the CSI spec (operator/csi/proto, committed as shipped). The compiled module lives in
 * dist/operator/csi/, the image keeps the proto at /app/operator/csi/proto: both are three levels up
 * and back down; a source run finds it beside this file.
 */
export function defaultProtoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.resolve(here, "../../../operator/csi/proto/csi.proto"),
    path.resolve(here, "proto/csi.proto"),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/**
 * Messages keep the proto's snake_case names; int64 values are strings (capacities exceed 2^53 in
 * principle, and zod checks them before use); enums are their names; unset fields get defaults
 * (messages null, strings "") and oneofs name the field set (access_type: "mount" | "block").
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface CsiServices {
  Identity: grpc.ServiceDefinition;
  Controller: grpc.ServiceDefinition;
  Node: grpc.ServiceDefinition;
}

/** Loads csi.proto (google/protobuf imports come with proto-loader) and returns the three services. */
export function loadCsiServices(protoPath = defaultProtoPath()): CsiServices {
  const def = protoLoader.loadSync(protoPath, LOADER_OPTIONS);
  const service = (name: string): grpc.ServiceDefinition => {
    const s = def[`csi.v1.${name}`];
    // Message types carry a "format"; services are maps of method definitions.
    if (!s || "format" in s) throw new Error(`${protoPath}: no service csi.v1.${name}`);
    return s as grpc.ServiceDefinition;
  };
  return { Identity: service("Identity"), Controller: service("Controller"), Node: service("Node") };
}

/** A client constructor per service, for tests and tools that talk to the driver. */
export function csiClients(protoPath = defaultProtoPath()) {
  const def = protoLoader.loadSync(protoPath, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    csi: { v1: Record<"Identity" | "Controller" | "Node", grpc.ServiceClientConstructor> };
  };
  return pkg.csi.v1;
}
