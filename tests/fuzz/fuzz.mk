# Fuzzing and test certificates; included by the Makefile.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_JOBS=2] [FUZZ_TARGETS="codec peer ..."]
#       builds every tests/fuzz/fuzz_NAME.c with clang -fsanitize=fuzzer,
#       address,undefined into $(FUZZ_BUILD)/ and runs each target for
#       FUZZ_SECONDS under nice -n 19, FUZZ_JOBS at a time, on its working
#       corpus $(FUZZ_BUILD)/corpus/NAME seeded from tests/fuzz/corpus/NAME.
#       Crashes go to $(FUZZ_BUILD)/artifacts/. Ends "N passed, M failed".
#   make fuzz-regress   runs every target once over its seed corpus and the
#       regression inputs in tests/fuzz/regress/NAME (past findings).
#   make fuzz-smoke [FUZZ_SMOKE_SECONDS=10]   builds every target (one that
#       does not build is a failure, not a stop) and runs each for
#       FUZZ_SMOKE_SECONDS on its seed corpus, 2 at a time; part of make
#       test (tests/run-all.sh fuzz). Ends "fuzz-smoke: N passed, M failed".
#   make fuzz-corpus    rewrites tests/fuzz/corpus from the encoders.
#   make fuzz-deps      installs clang and its fuzzer runtime (Debian).
#   make certs [CERTS_DIR=build/certs] [CERTS_NODES="node0 node1 node2"]
#       a throwaway CA and node certificates (kv-certs) for -peer-tls and
#       -https-cert.
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_CFLAGS = -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Ilib \
  -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_ALL := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_LIB_OBJ := $(LIB_SRC:lib/%.c=$(FUZZ_BUILD)/lib/%.o)
FUZZ_LIB_A := $(FUZZ_BUILD)/lib/libkeyval.a
FUZZ_BINS := $(FUZZ_ALL:%=$(FUZZ_BUILD)/fuzz_%)
CERTS_DIR ?= $(BUILD)/certs
CERTS_NODES ?= node0 node1 node2

.PHONY: fuzz fuzz-build fuzz-regress fuzz-corpus fuzz-deps certs

$(FUZZ_BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ_LIB_A): $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_A) $(HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_A) $(LDLIBS)

# The peer and client targets link raftd's own modules (all of bin/raftd/
# but main.c) and reach them through its private header (raftd_harness.h).
FUZZ_RAFTD_OBJ := $(patsubst bin/raftd/%.c,$(FUZZ_BUILD)/raftd/%.o,$(filter-out bin/raftd/main.c,$(wildcard bin/raftd/*.c)))
$(FUZZ_BUILD)/raftd/%.o: bin/raftd/%.c $(HDRS) $(wildcard bin/raftd/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ibin/raftd -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ_BUILD)/fuzz_peer $(FUZZ_BUILD)/fuzz_client $(FUZZ_BUILD)/fuzz_fcgi $(FUZZ_BUILD)/fuzz_front: $(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/raftd_harness.h $(FUZZ_RAFTD_OBJ) $(FUZZ_LIB_A) $(HDRS) $(wildcard bin/raftd/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ibin/raftd -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_RAFTD_OBJ) $(FUZZ_LIB_A) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh -j $(FUZZ_JOBS) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh -regress $(FUZZ_TARGETS)

fuzz-corpus: $(BUILD)/tests/mkcorpus
	$(BUILD)/tests/mkcorpus tests/fuzz/corpus

$(BUILD)/tests/mkcorpus: tests/fuzz/mkcorpus.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

fuzz-deps:
	tests/fuzz/deps.sh

certs: $(BUILD)/bin/kv-certs
	$(BUILD)/bin/kv-certs $(CERTS_DIR) $(CERTS_NODES)

FUZZ_SMOKE_SECONDS ?= 10
.PHONY: fuzz-smoke
fuzz-smoke:
	@FUZZ_BUILD=$(FUZZ_BUILD) MAKE="$(MAKE)" sh tests/fuzz/smoke.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_ALL)
