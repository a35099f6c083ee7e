import { hasanTargetCrd } from "./crd.js";
import { toYaml } from "./yaml.js";

export const CRD_FILE = "crds/hasan.dev_hasantargets.yaml";

/** The CRD file's exact content: a header, then the CRD as YAML. */
export function renderCrdYaml(): string {
  return "# Generated from operator/api by `make manifests`. Do not edit.\n" + toYaml(hasanTargetCrd());
}
