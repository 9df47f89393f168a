# Finalverse - top-level entry points. CMake does the building; this file wraps the common runs.
#   make          install missing build packages, build into build/
#   make up       ... and run the whole stack in the foreground (Ctrl-C stops it gracefully)
#   make test     install missing packages, build, run every test
#   make asan     the same suite under ASan+UBSan, in build-asan/
#   make fuzz     build the libFuzzer targets with clang and run each for FUZZ_SECONDS; new
#                 inputs go to build-fuzz/corpus-*, crashes to build-fuzz/artifacts/
#   make bench    run the benchmarks in bench/ (prints ratios against the reference servers)

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CTEST_ARGS ?= --output-on-failure

.PHONY: all build up test asan fuzz bench deps test-deps clean

all: build

deps:
	@bash scripts/deps.sh build

test-deps:
	@bash scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

up: build
	./$(BUILD)/finalverse up

test: test-deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest -j $(JOBS) $(CTEST_ARGS)

asan: test-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFV_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j $(JOBS) $(CTEST_ARGS)

fuzz: test-deps
	@CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DFV_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@mkdir -p $(FUZZ_BUILD)/artifacts
	@for f in $(FUZZ_BUILD)/fuzz_*; do \
	    name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	    mkdir -p $(FUZZ_BUILD)/corpus-$$name; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$name- $(FUZZ_BUILD)/corpus-$$name \
	        $$( [ -d $$corpus ] && echo $$corpus ) || exit 1; \
	done

# Each benchmark starts its own reference server on loopback and prints a ratio.
bench: build test-deps
	@for b in http kv sql vector blob tick bus rpc grpc world; do echo "== bench/$$b.sh"; bash bench/$$b.sh || exit 1; done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
