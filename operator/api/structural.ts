/**
 * Turns the JSON Schema that zod emits into a Kubernetes structural schema, and finds constructs that
 * the API server refuses. Kept separate from the CRD assembly so both halves are testable alone.
 */
export type SchemaNode = { [key: string]: unknown };

const FORBIDDEN_KEYS = ["$ref", "definitions", "$defs", "patternProperties", "uniqueItems", "propertyNames"];

/** Keys of JSONSchemaProps that a CRD accepts; anything else in zod's output is an error, not silently dropped. */
const ALLOWED_KEYS = new Set([
  "type",
  "format",
  "description",
  "properties",
  "required",
  "items",
  "enum",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "additionalProperties",
  "nullable",
  "default",
  "anyOf",
  "x-kubernetes-int-or-string",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
  "x-kubernetes-embedded-resource",
]);

function isNode(v: unknown): v is SchemaNode {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** int-or-string node: anyOf integer|string (allowed only together with x-kubernetes-int-or-string). */
function intOrString(node: SchemaNode, path: string): SchemaNode {
  const branches = Array.isArray(node.anyOf) ? node.anyOf.filter(isNode) : [];
  const pattern = branches.find((b) => b.type === "string")?.pattern;
  const out: SchemaNode = {
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
  };
  if (typeof pattern === "string") out.pattern = pattern;
  if (typeof node.description === "string") out.description = node.description;
  if (!branches.some((b) => b.type === "integer") || !branches.some((b) => b.type === "string")) {
    throw new Error(`${path}: x-kubernetes-int-or-string needs an integer and a string branch`);
  }
  return out;
}

/** Rewrites zod's JSON Schema into a structural schema; throws on anything that cannot be made structural. */
export function toStructural(input: SchemaNode, path = "<root>"): SchemaNode {
  if (input["x-kubernetes-int-or-string"] === true) return intOrString(input, path);
  const out: SchemaNode = {};
  for (const [key, value] of Object.entries(input)) {
    if (key === "$schema" || key === "propertyNames" || key === "title") continue;
    if (key === "additionalProperties" && value === false) continue;
    if (key === "const") {
      out.enum = [value];
      continue;
    }
    if (FORBIDDEN_KEYS.includes(key))
      throw new Error(`${path}: ${key} cannot be expressed in a structural schema`);
    if (key === "anyOf" || key === "oneOf" || key === "allOf" || key === "not") {
      throw new Error(
        `${path}: ${key} (a union) is not structural; use optional fields and CEL rules instead`,
      );
    }
    if (!ALLOWED_KEYS.has(key)) throw new Error(`${path}: unexpected JSON Schema keyword ${key}`);
    if (key === "properties" && isNode(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, child]) => [
          name,
          toStructural(child as SchemaNode, `${path}.${name}`),
        ]),
      );
    } else if ((key === "items" || key === "additionalProperties") && isNode(value)) {
      out[key] = toStructural(value, `${path}${key === "items" ? "[]" : ".*"}`);
    } else {
      out[key] = value;
    }
  }
  // Go's RE2 cannot run every pattern zod writes for formats; the format itself is validated by the server.
  if (out.format === "date-time") delete out.pattern;
  if (out.type === undefined) throw new Error(`${path}: every node of a structural schema needs a type`);
  return out;
}

/** Every forbidden construct in a schema, as "path: problem" lines (empty when the schema is structural). */
export function structuralProblems(node: unknown, path = "<root>"): string[] {
  if (!isNode(node)) return [];
  const problems: string[] = [];
  for (const key of FORBIDDEN_KEYS) if (key in node) problems.push(`${path}: ${key}`);
  if (node.additionalProperties === false) problems.push(`${path}: additionalProperties: false`);
  if (node.additionalProperties !== undefined && node.properties !== undefined) {
    problems.push(`${path}: properties and additionalProperties together`);
  }
  const intOrString = node["x-kubernetes-int-or-string"] === true;
  const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
  if (node.type === undefined && !intOrString && !preserve) problems.push(`${path}: no type`);
  for (const key of ["oneOf", "allOf", "not"]) if (key in node) problems.push(`${path}: ${key}`);
  if ("anyOf" in node && !intOrString) problems.push(`${path}: anyOf outside int-or-string`);
  if (node["x-kubernetes-list-type"] === "map") {
    const keys = node["x-kubernetes-list-map-keys"];
    const items = isNode(node.items) ? node.items : {};
    const required = Array.isArray(items.required) ? items.required : [];
    if (!Array.isArray(keys) || keys.length === 0) problems.push(`${path}: list-map without keys`);
    else
      for (const k of keys)
        if (!required.includes(k)) problems.push(`${path}: list-map key ${k} not required`);
  }
  if (isNode(node.properties)) {
    for (const [name, child] of Object.entries(node.properties)) {
      problems.push(...structuralProblems(child, `${path}.${name}`));
    }
  }
  if (isNode(node.items)) problems.push(...structuralProblems(node.items, `${path}[]`));
  if (isNode(node.additionalProperties))
    problems.push(...structuralProblems(node.additionalProperties, `${path}.*`));
  return problems;
}
