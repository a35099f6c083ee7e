import { mkdirSync, writeFileSync } from "node:fs";
import { CRD_FILE, renderCrdYaml } from "./crd-yaml.js";
import { SAMPLES, sampleFile } from "./samples.js";
import { toYaml } from "./yaml.js";

/** `make manifests`: writes the CRD and the samples generated from operator/api. */
mkdirSync("crds/samples", { recursive: true });
writeFileSync(CRD_FILE, renderCrdYaml());
console.log(`wrote ${CRD_FILE}`);
for (const [name, sample] of Object.entries(SAMPLES)) {
  writeFileSync(sampleFile(name), toYaml(sample));
  console.log(`wrote ${sampleFile(name)}`);
}
