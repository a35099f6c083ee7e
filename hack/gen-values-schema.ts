// Writes charts/hasan/values.schema.json from the zod schema of the chart's values.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";
import { z } from "zod";
import { ChartValuesSchema } from "../operator/pulumi/chart-values.js";

export const VALUES_SCHEMA_PATH = "charts/hasan/values.schema.json";

/** The JSON schema text exactly as checked in (draft-07, which every Helm 3 release understands). */
export async function valuesSchemaText(): Promise<string> {
  const schema = z.toJSONSchema(ChartValuesSchema, {
    target: "draft-7",
    io: "input",
    unrepresentable: "throw",
    reused: "inline",
  });
  return await prettier.format(JSON.stringify(schema), { parser: "json", printWidth: 110 });
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(path.join(repoRoot, VALUES_SCHEMA_PATH), await valuesSchemaText());
  console.log(`wrote ${VALUES_SCHEMA_PATH}`);
}
