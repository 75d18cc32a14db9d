# keyval - a Raft-replicated key-value store as a Unix toolkit.
# Build output goes to $(BUILD) (default build/), in the installed layout:
#   build/bin  build/cgi-bin  build/tests  build/lib  build/etc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
SAN ?=
OPT ?= -O2
CFLAGS ?= $(OPT) -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Ilib $(SAN) $(EXTRA_CFLAGS)
LDFLAGS += $(SAN)
LDLIBS = -lsqlite3 -ljansson -lm

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB_A := $(BUILD)/lib/libkeyval.a

BIN_C := $(wildcard bin/*.c)
BIN_SH := $(wildcard bin/*.sh)
BINS := $(BIN_C:bin/%.c=$(BUILD)/bin/%) $(BIN_SH:bin/%.sh=$(BUILD)/bin/%)
CGI_C := $(wildcard cgi-bin/*.c)
CGIS := $(CGI_C:cgi-bin/%.c=$(BUILD)/cgi-bin/%)
TEST_C := $(wildcard tests/test_*.c) $(wildcard tests/raft-sim.c)
TESTS := $(TEST_C:tests/%.c=$(BUILD)/tests/%)
ETC := $(wildcard etc/*)
ETC_OUT := $(ETC:etc/%=$(BUILD)/etc/%)

# Hooks for helper objects shared by several programs.
HDRS := $(wildcard lib/*.h)

.PHONY: all test test-unit test-sim test-cluster test-asan sim-mutants soak \
        deps clean install uninstall

all: $(BINS) $(CGIS) $(TESTS) $(ETC_OUT)

$(BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: bin/%.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/bin/%: bin/%.sh
	@mkdir -p $(@D)
	cp $< $@
	chmod 755 $@

$(BUILD)/cgi-bin/%: cgi-bin/%.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/etc/%: etc/%
	@mkdir -p $(@D)
	cp $< $@

# The whole suite: unit tests, simulator, cluster tests; ends with
# "N passed, M failed". SIM_SEEDS seeds per cluster size.
SIM_SEEDS ?= 2000
test: all
	BUILD=$(BUILD) SIM_SEEDS=$(SIM_SEEDS) tests/run-all.sh

test-unit: all
	BUILD=$(BUILD) tests/run-all.sh unit

test-sim: all
	BUILD=$(BUILD) SIM_SEEDS=$(SIM_SEEDS) tests/run-all.sh sim

test-cluster: all
	BUILD=$(BUILD) tests/run-all.sh cluster

# Unit tests and a shorter simulator run under ASan + UBSan.
test-asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all
	BUILD=build-asan SIM_SEEDS=200 tests/run-all.sh unit sim

# Build the core with each deliberate bug and show the simulator catches it.
sim-mutants:
	tests/sim-mutants.sh

SOAK_SEEDS ?= 100000
soak: all
	BUILD=$(BUILD) SIM_SEEDS=$(SOAK_SEEDS) tests/run-all.sh sim

deps:
	tests/deps.sh

clean:
	rm -rf build build-asan build-mut-*

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
	  $(DESTDIR)$(PREFIX)/libexec/keyval $(DESTDIR)$(PREFIX)/share/keyval
	for f in $(BINS); do install -m 755 $$f $(DESTDIR)$(PREFIX)/bin/; done
	for f in $(CGIS); do install -m 755 $$f $(DESTDIR)$(PREFIX)/libexec/keyval/; done
	for f in $(ETC_OUT); do install -m 644 $$f $(DESTDIR)$(PREFIX)/share/keyval/; done
