# Long fuzzing of the iSCSI transport (PDU framing, login state machine, live server, limits under hostile clients).
# FUZZ_SEED=<n> replays a seed; FUZZ_ROUNDS=<n> sets how many seeds run.
.PHONY: fuzz

fuzz: build ## fuzz the iSCSI PDU parser, login state machine and a live server (long)
	node dist/test/unit/iscsi/fuzz-runner.js
