# Randomized fault rounds against a real pair (kill -9, link cuts, restarts in every order).
# FAULT_ROUNDS and FAULT_SEED override the defaults; the seed is printed so a run can be replayed.
# The first suite drives I/O through the pair's block device in test node processes; the second
# runs the real target processes and does all I/O through iSCSI sessions to both portals.
FAULT_ROUNDS ?= 50
# 50 rounds over iSCSI take about 16 minutes here: more than the test command's per-file limit.
FAULT_TIMEOUT_MS ?= 7200000

.PHONY: test-faults
test-faults: build ## ≥50 seeded fault rounds against a real pair, then as many over iSCSI (prints the seeds)
	HASAN_FAULT_ROUNDS=$(FAULT_ROUNDS) $(if $(FAULT_SEED),HASAN_FAULT_SEED=$(FAULT_SEED)) \
	  $(NODE_TEST) --test-timeout=$(FAULT_TIMEOUT_MS) \
	  dist/test/integration/pair-faults.test.js dist/test/integration/ha-faults-iscsi.test.js
