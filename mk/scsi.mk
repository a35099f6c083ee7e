# SCSI command layer and file-backed store.
.PHONY: test-scsi

test-scsi: build ## unit tests of the SCSI layer, the reservation state and the file device
	$(NODE_TEST) $$(find dist/test/unit/scsi dist/test/unit/store -name '*.test.js' | sort)
