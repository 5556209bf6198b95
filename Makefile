# A thin wrapper: meson and ninja do the work, and a second run only does
# what is out of date.
BUILD ?= build
# The fuzz targets' clang build dir, and seconds per target (make fuzz; make
# bench runs each for FUZZ_BENCH_SECONDS).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_BENCH_SECONDS ?= 20
# CI builds with warnings as errors.
MESON_SETUP_FLAGS ?= $(if $(filter true,$(CI)),-Dwerror=true)

.PHONY: all deps build test run bench fuzz crash-soak format clean

all: build

deps:
	@tools/dev/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_SETUP_FLAGS)

build: deps
	@$(MAKE) --no-print-directory $(BUILD)/build.ninja
	meson compile -C $(BUILD)

test: build
	@tools/dev/run-tests.sh $(BUILD)

run: build
	@tools/dev/run.sh $(BUILD)

bench: build
	@tools/dev/install-deps.sh --bench
	meson test -C $(BUILD) --benchmark --verbose
	@FUZZ_BUILD=$(FUZZ_BUILD) tools/dev/fuzz.sh $(FUZZ_BENCH_SECONDS)

# libFuzzer + ASan + UBSan on every parser (docs/fuzzing.md); not in make test.
fuzz:
	@FUZZ_BUILD=$(FUZZ_BUILD) tools/dev/fuzz.sh $(FUZZ_SECONDS)

# SIGKILLs bladed at random moments of creates and destroys, per fault type
# (tests/crash/crash_soak.cpp); BLADE_SOAK_TRIALS (default 100) and
# BLADE_SOAK_ROWS ("disk fill,disk burn") narrow it. Not part of `make test`.
crash-soak: build
	$(BUILD)/tests/crash/crash_soak

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
