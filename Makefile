# Makefile — thin wrapper over CMake so the README's commands work on a fresh
# Debian 12 machine. Every target first runs scripts/setup.sh, which installs
# missing packages (as root) and is a no-op when everything is present.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local
FUZZ_SECONDS ?= 60

.PHONY: all build test asan demo bench bench-quick install fuzz clean setup conformance

all: build

setup:
	@scripts/setup.sh build

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

test:
	@scripts/setup.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	@scripts/setup.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGRAFT_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

demo:
	@scripts/setup.sh demo
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory
	$(BUILD)/graft demo --out demo-out --force

bench:
	@scripts/setup.sh bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory
	@bench/run.sh $(BUILD)

bench-quick:
	@scripts/setup.sh bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory
	@bench/run.sh $(BUILD) --quick

# libFuzzer targets (tests/fuzz): clang build in $(FUZZ_BUILD), each target run
# FUZZ_SECONDS on a scratch copy of its seed corpus (finds are not committed
# automatically; crashes land in $(FUZZ_BUILD)/crash-*).
FUZZ_BUILD ?= build-fuzz
fuzz:
	@scripts/setup.sh fuzz
	@cmake -S tests/fuzz -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@set -e; for t in safetensors peft_config onnx tfjs; do \
	  mkdir -p $(FUZZ_BUILD)/work_$$t && cp tests/fuzz/corpus/$$t/* $(FUZZ_BUILD)/work_$$t/; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 $$dict \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- $(FUZZ_BUILD)/work_$$t; \
	done

# ONNX operator conformance: every case of /usr/share/libonnx-testdata whose
# ops graft implements, per-op pass/fail/unsupported table (docs/ONNX.md).
conformance:
	@scripts/setup.sh onnx
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target test_onnx_conformance -- --no-print-directory
	@$(BUILD)/test_onnx_conformance --table

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
