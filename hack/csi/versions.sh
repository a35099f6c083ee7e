# Pinned versions of the CSI tools built from Go modules (hack/csi/tools.sh). Bumping one
# rebuilds the set (the cache directory is keyed by all of them).
CSI_PROVISIONER_VERSION=v6.4.0
CSI_RESIZER_VERSION=v2.3.0
CSI_TEST_VERSION=v5.4.0
# The CSI spec whose csi.proto is committed in operator/csi/proto/ (hack/csi/tools.sh --check-proto).
CSI_SPEC_VERSION=v1.13.0
