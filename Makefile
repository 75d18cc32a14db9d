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
# A program of several files: bin/NAME/*.c (and its private headers)
# builds $(BUILD)/bin/NAME, each file compiled to $(BUILD)/obj/NAME/.
BIN_DIRS := $(patsubst bin/%/,%,$(sort $(dir $(wildcard bin/*/*.c))))
BINS += $(BIN_DIRS:%=$(BUILD)/bin/%)
CGI_C := $(wildcard cgi-bin/*.c)
CGIS := $(CGI_C:cgi-bin/%.c=$(BUILD)/cgi-bin/%)
TEST_C := $(wildcard tests/test_*.c) $(wildcard tests/raft-sim.c)
TESTS := $(TEST_C:tests/%.c=$(BUILD)/tests/%)
ETC := $(wildcard etc/*)
ETC_OUT := $(ETC:etc/%=$(BUILD)/etc/%)
# The web console's static files (share/ui/): build/etc/ui, installed in
# share/keyval/ui, next to the lighttpd templates keyval finds there.
UI := $(wildcard share/ui/*)
UI_OUT := $(UI:share/ui/%=$(BUILD)/etc/ui/%)

# Hooks for helper objects shared by several programs.
HDRS := $(wildcard lib/*.h)

.PHONY: all test test-unit test-sim test-cluster test-asan asan-build sim-mutants soak soak-netns \
        deps clean install uninstall lint-man

all: $(BINS) $(CGIS) $(TESTS) $(ETC_OUT) $(UI_OUT)

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

$(BUILD)/obj/%.o: bin/%.c $(HDRS) $(wildcard bin/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -I$(dir $<) -c -o $@ $<

define bin_dir_rule
$(BUILD)/bin/$(1): $(patsubst bin/%.c,$(BUILD)/obj/%.o,$(wildcard bin/$(1)/*.c)) $(LIB_A)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach d,$(BIN_DIRS),$(eval $(call bin_dir_rule,$(d))))

# The CGI programs link only what they use (jansson, and libfcgi when its
# headers are installed, for the FastCGI mode of lib/cgi_main.c), and
# statically, so that each request's exec skips the dynamic loader
# (bench/README.md has the figures). CGI_STATIC= links them dynamically;
# sanitizer builds always do. Without libfcgi-dev they are CGI-only.
HAVE_FCGI := $(shell test -f /usr/include/fcgiapp.h && echo 1)
ifeq ($(HAVE_FCGI),1)
CFLAGS += -DKEYVAL_HAVE_FCGI
CGI_LDLIBS = -lfcgi -ljansson
else
CGI_LDLIBS = -ljansson
endif
CGI_STATIC ?= $(if $(SAN),,-static)

$(BUILD)/cgi-bin/%: cgi-bin/%.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $(CGI_STATIC) -o $@ $< $(LIB_A) $(CGI_LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)
# Every test program shares one harness, tests/check.h.
$(TESTS): tests/check.h

$(BUILD)/etc/%: etc/%
	@mkdir -p $(@D)
	cp $< $@

$(BUILD)/etc/ui/%: share/ui/%
	@mkdir -p $(@D)
	cp $< $@

# The whole suite: unit tests, simulator, cluster tests, ASan, fuzz smoke
# and lint; ends with "N passed, M failed". SIM_SEEDS seeds per cluster
# size. The fuzz and lint suites run make fuzz-smoke and make lint.
SIM_SEEDS ?= 2000
test: all asan-build
	BUILD=$(BUILD) SIM_SEEDS=$(SIM_SEEDS) MAKE="$(MAKE)" tests/run-all.sh

test-unit: all
	BUILD=$(BUILD) tests/run-all.sh unit

test-sim: all
	BUILD=$(BUILD) SIM_SEEDS=$(SIM_SEEDS) tests/run-all.sh sim

test-cluster: all
	BUILD=$(BUILD) tests/run-all.sh cluster

# Unit tests and a shorter simulator run under ASan + UBSan.
asan-build:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all

test-asan: asan-build
	BUILD=build tests/run-all.sh asan

# Build the core with each deliberate bug and show the simulator catches it.
sim-mutants:
	tests/sim-mutants.sh

SOAK_SEEDS ?= 100000
soak: all
	BUILD=$(BUILD) SIM_SEEDS=$(SOAK_SEEDS) tests/run-all.sh sim

# Long network-namespace runs (root and ip netns; not in make test): the
# 3-host test with 2 and 10 minute cuts (plain and -peer-tls), then the
# 5-host test with a 120 s minority cut and 120 s of flapping links.
# About 35 minutes; figures as "figure: ..." lines.
soak-netns: all
	BUILD=$(BUILD) NETNS_LONG=1 sh tests/cluster/netns.sh; a=$$?; \
	BUILD=$(BUILD) NETNS5_LONG=1 sh tests/cluster/netns5.sh && [ $$a = 0 ]

deps:
	tests/deps.sh

clean:
	rm -rf build build-asan build-mut-*

# make install [PREFIX=/usr/local] [DESTDIR=]: user commands (section 1)
# in bin, raftd, kv-admin, kv-health and kv-restore (section 8) in sbin,
# the CGI programs in libexec/keyval, templates (lighttpd.conf.in,
# keyval@.service, keyval.cron) in share/keyval, man pages in share/man/manN. Nothing outside
# $(DESTDIR)$(PREFIX). make uninstall removes exactly those files and
# keyval's own two directories.
BINDIR = $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
LIBEXECDIR = $(PREFIX)/libexec/keyval
SHAREDIR = $(PREFIX)/share/keyval
MANDIR = $(PREFIX)/share/man
SBIN_NAMES := raftd kv-admin kv-health kv-restore
BIN_NAMES := $(filter-out $(SBIN_NAMES),$(notdir $(BINS)))
CGI_NAMES := $(notdir $(CGIS))
MAN_PAGES := $(wildcard man/*.[1-8])
TEMPLATE_IN := $(wildcard etc/*.service.in etc/*.cron.in)
TEMPLATE_NAMES := $(notdir $(TEMPLATE_IN:.in=))
SHARE_NAMES := $(filter-out $(notdir $(TEMPLATE_IN)),$(notdir $(ETC)))
INSTALLED := $(BIN_NAMES:%=$(BINDIR)/%) $(SBIN_NAMES:%=$(SBINDIR)/%) \
  $(CGI_NAMES:%=$(LIBEXECDIR)/%) $(SHARE_NAMES:%=$(SHAREDIR)/%) \
  $(TEMPLATE_NAMES:%=$(SHAREDIR)/%) $(UI:share/ui/%=$(SHAREDIR)/ui/%) \
  $(foreach m,$(MAN_PAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

install: all
	@case "$(PREFIX)" in /*) ;; *) echo "make install: PREFIX must be an absolute path" >&2; exit 2;; esac
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) \
	  $(DESTDIR)$(SHAREDIR)
	for f in $(BIN_NAMES); do install -m 755 $(BUILD)/bin/$$f $(DESTDIR)$(BINDIR)/$$f || exit 1; done
	for f in $(SBIN_NAMES); do install -m 755 $(BUILD)/bin/$$f $(DESTDIR)$(SBINDIR)/$$f || exit 1; done
	for f in $(CGI_NAMES); do install -m 755 $(BUILD)/cgi-bin/$$f $(DESTDIR)$(LIBEXECDIR)/$$f || exit 1; done
	for f in $(SHARE_NAMES); do install -m 644 etc/$$f $(DESTDIR)$(SHAREDIR)/$$f || exit 1; done
	install -d $(DESTDIR)$(SHAREDIR)/ui
	for f in $(UI); do install -m 644 $$f $(DESTDIR)$(SHAREDIR)/ui/ || exit 1; done
	for f in $(TEMPLATE_NAMES); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' etc/$$f.in \
	    > $(DESTDIR)$(SHAREDIR)/$$f && chmod 644 $(DESTDIR)$(SHAREDIR)/$$f || exit 1; done
	for m in $(MAN_PAGES); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s && \
	  install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; done

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SHAREDIR)/ui $(DESTDIR)$(SHAREDIR) 2>/dev/null

# Every man page is clean under mandoc -Tlint.
lint-man:
	mandoc -Tlint -W warning $(MAN_PAGES)

# make lint: the C sources and headers follow .clang-format (clang-format
# 14 --dry-run -Werror) and cppcheck finds nothing; ends "lint: N passed,
# M failed". make format rewrites them with clang-format -i. The file list
# and the cppcheck options are in tests/lint.sh.
.PHONY: lint format
lint:
	@sh tests/lint.sh

format:
	sh tests/lint.sh format

# Fault-injection suite (tests/fault/): link program, workload, checker.
FAULT_C := $(wildcard tests/fault/*.c)
FAULT_TOOLS := $(FAULT_C:tests/fault/%.c=$(BUILD)/tests/fault/%)
.PHONY: fault-tools jepsen fault-modes teeth
all: $(FAULT_TOOLS)
fault-tools: $(FAULT_TOOLS)

$(BUILD)/tests/fault/%: tests/fault/%.c tests/fault/lincheck.h $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/tests/test_lincheck: tests/fault/lincheck.h

# Long randomized fault schedule: make jepsen DURATION=600 NODES=5 [SEED=N]
# [JEPSEN_FLAGS="-L -c 8 ..."] (tests/fault/jepsen.sh options)
DURATION ?= 300
NODES ?= 3
SEED ?=
jepsen: all
	BUILD=$(BUILD) tests/fault/jepsen.sh -n $(NODES) -d $(DURATION) $(if $(SEED),-s $(SEED)) $(JEPSEN_FLAGS)

# raftd with deliberate bugs (test-only switches), built apart in build-faults/.
fault-modes:
	$(MAKE) BUILD=build-faults EXTRA_CFLAGS=-DKEYVAL_FAULT_MODES all

# Show the fault suite catches each deliberate bug of build-faults/ raftd.
teeth: all fault-modes
	BUILD=$(BUILD) tests/fault/teeth.sh

# Benchmarks (not part of make test): bench/run.sh, results in
# bench/results/YYYY-MM-DD.md. BENCH_SECONDS per round (default 5).
.PHONY: bench bench-deps bench-scale
# triv-cgi (static) and triv-cgi-dyn: the floor; key-get-dyn: key-get
# linked the old way (dynamic, every library) to measure start-up cost.
BENCH_TOOLS := $(BUILD)/bench/triv-cgi $(BUILD)/bench/triv-cgi-dyn \
  $(BUILD)/bench/spawn-time $(BUILD)/bench/key-get-dyn $(BUILD)/bench/key-get-dyn-all \
  $(BUILD)/bench/disk-probe $(BUILD)/bench/triv-fcgi
$(BUILD)/bench/triv-cgi: bench/triv-cgi.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $(CGI_STATIC) -o $@ $<
$(BUILD)/bench/triv-cgi-dyn: bench/triv-cgi.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
$(BUILD)/bench/spawn-time: bench/spawn-time.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
$(BUILD)/bench/triv-fcgi: bench/triv-fcgi.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lfcgi
# The storage layer's apply rate (bench/store-apply.c; not run by bench.sh).
BENCH_TOOLS += $(BUILD)/bench/store-apply
$(BUILD)/bench/store-apply: bench/store-apply.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)
$(BUILD)/bench/disk-probe: bench/disk-probe.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lsqlite3
$(BUILD)/bench/key-get-dyn: cgi-bin/key-get.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(CGI_LDLIBS) $(LDLIBS)
$(BUILD)/bench/key-get-dyn-all: cgi-bin/key-get.c $(LIB_A) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--no-as-needed -o $@ $< $(LIB_A) $(CGI_LDLIBS) $(LDLIBS)

bench: all $(BENCH_TOOLS)
	BUILD=$(BUILD) bench/run.sh

# Writes as the table grows (issue 15): raftd direct, empty table and after
# an offline fill of SCALE_KEYS (default 2000000) keys. Long: not in make test.
bench-scale: all
	BUILD=$(BUILD) sh bench/scale.sh

# wrk, Debian's etcd-server, and hraftd (the seed) for make bench. hraftd's
# source is not part of keyval: HRAFTD_SRC (default ../shared/peers/hraftd/src
# beside the checkout, or any otoolep/hraftd tree) is built offline with
# Debian's Go and hashicorp/raft by bench/hraftd/build.sh into
# $(BUILD)/bench/hraftd; without a source tree the bench runs without it.
HRAFTD_SRC ?= ../shared/peers/hraftd/src
HRAFTD_PKGS := golang-go golang-github-hashicorp-raft-dev golang-github-hashicorp-raft-boltdb-dev
bench-deps:
	@SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	missing=""; for p in wrk etcd-server $(HRAFTD_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi
	@if [ -f "$(HRAFTD_SRC)/main.go" ]; then \
	  SKIP_APT=1 bench/hraftd/build.sh "$(HRAFTD_SRC)" $(BUILD)/bench/hraftd; \
	else echo "bench-deps: no hraftd source at $(HRAFTD_SRC) (set HRAFTD_SRC): the bench runs without hraftd"; fi
	@echo "bench-deps: ok"

# Fuzzing (make fuzz, fuzz-regress, fuzz-corpus, fuzz-deps) and test
# certificates (make certs): see tests/fuzz/fuzz.mk and docs/security.md.
include tests/fuzz/fuzz.mk
