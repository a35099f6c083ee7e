# Operator: generated manifests and running it against the local cluster.
.PHONY: manifests operator-up operator-down

# Compiles in place (no `rm -rf dist`: the local cluster runs pods and its node agent from dist/).
operator-compile:
	@npx tsc -p tsconfig.json >/dev/null || true

manifests: operator-compile ## regenerate crds/ (CRD and samples) from the zod schemas in operator/api
	node dist/operator/api/gen-crd.js

operator-up: operator-compile ## run the operator on the local cluster as a host process, with its eviction webhook
	operator/scripts/operator-up.sh

operator-down: ## stop the operator started by operator-up and remove its webhook configuration
	operator/scripts/operator-down.sh
