# The CSI driver (operator/csi): its sidecars and the sanity suite built from Go modules.
.PHONY: csi-tools csi-proto-check

csi-tools: ## build csi-provisioner, csi-resizer and csi-sanity into ~/.cache/hasan/tools/csi-*
	@hack/csi/tools.sh >/dev/null

csi-proto-check: ## check operator/csi/proto/csi.proto is the pinned CSI spec's
	@hack/csi/tools.sh --check-proto

# test/integration/csi-sanity.test.ts needs csi-sanity: built before the suites, outside their timeouts.
test test-integration: csi-tools
