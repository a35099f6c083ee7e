# Randomized fault rounds against a real pair (kill -9, link cuts, restarts in every order), and
# power-loss rounds (nodes on lazyfs, unflushed writes really lost). FAULT_ROUNDS, POWER_ROUNDS,
# FAULT_SEED and POWER_SEED override the defaults; every suite prints its seed so a run can be
# replayed. The first suite drives I/O through the pair's block device in test node processes;
# the others run the real target processes and do all I/O through iSCSI sessions to both portals.
FAULT_ROUNDS ?= 50
POWER_ROUNDS ?= 20
# 50 rounds over iSCSI take about 16 minutes here: more than the test command's per-file limit.
FAULT_TIMEOUT_MS ?= 7200000

.PHONY: test-faults
test-faults: build ## ≥50 seeded fault rounds, as many over iSCSI, 20 power-loss rounds (prints the seeds)
	HASAN_FAULT_ROUNDS=$(FAULT_ROUNDS) $(if $(FAULT_SEED),HASAN_FAULT_SEED=$(FAULT_SEED)) \
	HASAN_POWER_ROUNDS=$(POWER_ROUNDS) $(if $(POWER_SEED),HASAN_POWER_SEED=$(POWER_SEED)) \
	  $(NODE_TEST) --test-timeout=$(FAULT_TIMEOUT_MS) \
	  dist/test/integration/pair-faults.test.js dist/test/integration/ha-faults-iscsi.test.js \
	  dist/test/integration/pair-power-loss.test.js
