import { z } from "zod";
import { LIMITS_RULES } from "./limits.js";
import { HASanTargetSpecSchema } from "./spec.js";
import { HASanTargetStatusSchema, UNRECONCILED } from "./status.js";
import { CATEGORIES, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from "./target.js";
import { toStructural, type SchemaNode } from "./structural.js";

interface ValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

function jsonSchema(schema: z.ZodType): SchemaNode {
  return z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    reused: "inline",
    cycles: "throw",
    unrepresentable: "throw",
  }) as SchemaNode;
}

/** CEL for "optional string field compared as '' when absent" on self and oldSelf. */
function sameOptional(path: string): string {
  const parts = path.split(".");
  const presence = (root: string) =>
    parts.map((_, i) => `has(${root}.${parts.slice(0, i + 1).join(".")})`).join(" && ");
  const value = (root: string) => `(${presence(root)} ? ${root}.${path} : '')`;
  return `${value("self")} == ${value("oldSelf")}`;
}

function quantityOf(expr: string): string {
  return `quantity(string(${expr}))`;
}

/** Rules zod cannot express: transitions (grow-only, immutable) and cross-field comparisons. */
export const SPEC_RULES: ValidationRule[] = [
  {
    rule: sameOptional("iqn"),
    message: "spec.iqn is immutable: it cannot be set, changed or removed after creation",
    fieldPath: ".iqn",
    reason: "FieldValueForbidden",
  },
  {
    rule: sameOptional("storage.storageClassName"),
    message: "spec.storage.storageClassName is immutable: the backing PVCs cannot move to another class",
    fieldPath: ".storage.storageClassName",
    reason: "FieldValueForbidden",
  },
  {
    rule: sameOptional("export.persistentVolume.name"),
    message: "spec.export.persistentVolume.name is immutable: consumers refer to the PV by name",
    fieldPath: ".export.persistentVolume.name",
    reason: "FieldValueForbidden",
  },
  {
    rule:
      "!has(oldSelf.storage) || !has(oldSelf.storage.size) || (has(self.storage) && has(self.storage.size) && " +
      `${quantityOf("self.storage.size")}.compareTo(${quantityOf("oldSelf.storage.size")}) >= 0)`,
    message: "spec.storage.size is grow-only: it may increase but never shrink or be removed",
    fieldPath: ".storage.size",
    reason: "FieldValueForbidden",
  },
  {
    rule:
      "!has(self.storage) || !has(self.storage.size) || " +
      `${quantityOf("self.storage.size")}.compareTo(${quantityOf("self.capacity")}) > 0`,
    message: "spec.storage.size must be larger than spec.capacity (room for metadata and the dirty bitmap)",
    fieldPath: ".storage.size",
  },
  ...LIMITS_RULES,
];

/** spec.auth.chap: Disabled is an explicit opt-out and takes no credentials. */
export const AUTH_RULES: ValidationRule[] = [
  {
    rule: "!has(self.chap) || self.chap != 'Disabled' || !has(self.chapSecretRef)",
    message: "spec.auth.chapSecretRef cannot be set with spec.auth.chap: Disabled",
    fieldPath: ".chapSecretRef",
    reason: "FieldValueForbidden",
  },
  {
    rule: "!has(self.chap) || self.chap != 'Disabled' || !has(self.mutual) || !self.mutual",
    message: "spec.auth.mutual needs CHAP: it cannot be true with spec.auth.chap: Disabled",
    fieldPath: ".mutual",
    reason: "FieldValueForbidden",
  },
];

export const CAPACITY_RULES: ValidationRule[] = [
  {
    // isInteger() is false for a decimal mantissa with a binary suffix (1.5Gi) even when the value
    // is whole; such values go through a double, exact up to 2^53 bytes (8 PiB).
    rule:
      `isQuantity(string(self)) && ${quantityOf("self")}.compareTo(quantity('1Mi')) >= 0 && ` +
      `(${quantityOf("self")}.isInteger() ? ${quantityOf("self")}.asInteger() % 512 == 0 : ` +
      `${quantityOf("self")}.asApproximateFloat() < 9007199254740992.0 && ` +
      `double(int(${quantityOf("self")}.asApproximateFloat())) == ${quantityOf("self")}.asApproximateFloat() && ` +
      `int(${quantityOf("self")}.asApproximateFloat()) % 512 == 0)`,
    message: "spec.capacity must be at least 1Mi and a whole number of 512-byte blocks (e.g. 10Gi)",
    reason: "FieldValueInvalid",
  },
  {
    rule: `isQuantity(string(self)) && isQuantity(string(oldSelf)) && ${quantityOf("self")}.compareTo(${quantityOf("oldSelf")}) >= 0`,
    message: "spec.capacity is grow-only: it may increase but never shrink",
    reason: "FieldValueForbidden",
  },
];

function withRules(node: SchemaNode, rules: ValidationRule[]): SchemaNode {
  return { ...node, "x-kubernetes-validations": rules };
}

export function specSchema(): SchemaNode {
  const spec = toStructural(jsonSchema(HASanTargetSpecSchema), "spec");
  const properties = spec.properties as Record<string, SchemaNode>;
  const capacity = properties.capacity;
  const auth = properties.auth;
  if (!capacity || !auth) throw new Error("spec.capacity or spec.auth missing from the schema");
  return withRules(
    {
      ...spec,
      properties: {
        ...properties,
        capacity: withRules(capacity, CAPACITY_RULES),
        auth: withRules(auth, AUTH_RULES),
      },
    },
    SPEC_RULES,
  );
}

/**
 * A target no operator has written status for reads as phase Unreconciled (`kubectl get hst`
 * shows it), instead of an empty line that looks like a pair still forming.
 */
export function statusSchema(): SchemaNode {
  const status = toStructural(jsonSchema(HASanTargetStatusSchema), "status");
  const properties = status.properties as Record<string, SchemaNode>;
  const phase = properties.phase;
  if (!phase) throw new Error("status.phase missing from the schema");
  return {
    ...status,
    default: {},
    properties: { ...properties, phase: { ...phase, default: UNRECONCILED } },
  };
}

/** The CustomResourceDefinition of HASanTarget, generated from the zod schemas. */
export function hasanTargetCrd(): SchemaNode {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: CATEGORIES,
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Phase", type: "string", jsonPath: ".status.phase", description: "State of the pair" },
            { name: "A", type: "string", jsonPath: ".status.nodes[0].state", description: "Node a" },
            { name: "B", type: "string", jsonPath: ".status.nodes[1].state", description: "Node b" },
            {
              name: "Sync",
              type: "string",
              jsonPath: ".status.syncProgress",
              description: "Resync progress",
            },
            { name: "Capacity", type: "string", jsonPath: ".spec.capacity", priority: 1 },
            { name: "IQN", type: "string", jsonPath: ".status.iqn", priority: 1 },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "HASanTarget is a highly available iSCSI target: two pods mirroring one LUN.",
              properties: {
                apiVersion: {
                  type: "string",
                  description: "Versioned schema of this object: hasan.dev/v1alpha1.",
                },
                kind: { type: "string", description: "HASanTarget." },
                // The API server refuses anything but name/generateName here, a description included.
                metadata: { type: "object" },
                spec: specSchema(),
                status: statusSchema(),
              },
              required: ["spec"],
            },
          },
        },
      ],
    },
  };
}
