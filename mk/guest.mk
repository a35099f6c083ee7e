# The Linux client stack (open-iscsi, dm-multipath, ext4/xfs) in a Debian guest under qemu: the
# image is built once into ~/.cache/hasan/guest-<recipe hash> (hack/guest/build.sh). The fast set
# (logins, multipath, one failover) runs in `make test`; the long scenarios here.
INTEROP_TIMEOUT_MS ?= 3600000

.PHONY: vm-image test-interop
vm-image: ## build the Debian guest image for the kernel initiator tests (about 3 minutes, once)
	@hack/guest/build.sh

test-interop: build ## kernel initiator + dm-multipath + filesystems through every fault and maintenance step
	hack/guest/build.sh >/dev/null
	$(NODE_TEST) --test-timeout=$(INTEROP_TIMEOUT_MS) $$(find dist/test/interop -name '*.test.js' | sort)
