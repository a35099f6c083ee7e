# Operator: generated manifests and running it against the local cluster.
.PHONY: manifests operator-up operator-down

manifests: ## regenerate crds/ from the zod schemas in operator/api
	@npx tsc -p tsconfig.json >/dev/null || true
	node dist/operator/api/gen-crd.js

operator-up: build ## run the operator on the local cluster as a host process (CRD, RBAC-free, webhook on 127.0.0.1)
	operator/scripts/operator-up.sh

operator-down: ## stop the operator started by operator-up and remove its webhook configuration
	operator/scripts/operator-down.sh
