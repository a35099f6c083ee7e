# Install paths: the Helm chart, the plain manifests generated from it, and the demo.
.PHONY: chart-lint manifests-plain demo demo-down

chart-lint: build ## helm lint the chart and check the generated chart files and plain manifests are fresh
	@hack/cluster/tools.sh >/dev/null
	"$$(hack/cluster/paths.sh | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).helm))')" lint --strict charts/hasan
	node dist/hack/gen-manifests.js --check

manifests-plain: build ## regenerate the chart's CRD template and values.schema.json, and charts/manifests/hasan.yaml
	@hack/cluster/tools.sh >/dev/null
	node dist/hack/gen-manifests.js

demo: build ## local cluster + operator installed with Helm + a live HA pair; data written and read through both portals
	@hack/demo.sh up

demo-down: ## remove what make demo installed (the pair, its data, the release); the cluster keeps running
	@hack/demo.sh down
