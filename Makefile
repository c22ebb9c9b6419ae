# Build, test, demo and benchmark entry points for Switchyard; every target installs missing dependencies first.

SHELL := /bin/bash
# The Swift toolchain lives in /opt/swift on these machines and is not always on PATH.
ifneq ($(wildcard /opt/swift/usr/bin),)
export PATH := /opt/swift/usr/bin:$(PATH)
endif

SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
SWIFT_TEST_FLAGS ?=

.PHONY: deps build test demo bench clean

deps:
	bash scripts/install-deps.sh

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

# The tests look for the switchyard binary next to the test bundle, hence the plain build first.
# Leftover servers of this run (if a test crashed) are ended before reporting swift test's status.
test: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)
	@status=0; $(SWIFT) test $(SWIFT_BUILD_FLAGS) $(SWIFT_TEST_FLAGS) || status=$$?; \
	bash scripts/kill-test-leftovers.sh || true; \
	exit $$status

demo: build
	bash scripts/demo.sh

bench: deps
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)
	bash loadtests/bench.sh

clean:
	$(SWIFT) package clean
	rm -rf .venv-test .build-harness
