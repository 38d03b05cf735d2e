# churnstream — build, test, demo, bench.
# Every library comes through pkg-config. `make SANITIZE=address,undefined` builds into
# build-san/ so sanitized and plain objects never mix. `make CI=1` adds -Werror.

OPT      ?= -O2
CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
CI       ?=
PKG_CONFIG ?= pkg-config

PKGS     := rdkafka avro-c hiredis openblas libmicrohttpd zlib libcurl jansson
BUILD    := build$(if $(SANITIZE),-san)
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN     := -Wall -Wextra -Wstrict-prototypes -Wshadow -Wno-unused-parameter
CFLAGS   ?= $(OPT) -g
# processor/ is one folder per layer (README, "Layout"); headers are included by name, so
# every layer's folder is on the include path and tests/tools/layering.py keeps the
# includes pointing down.
LAYERS   := core config features models engine codec alerts daemon replay import cli
SRC_DIRS := $(addprefix processor/,$(LAYERS)) state
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(addprefix -I,$(SRC_DIRS)) \
	-DCS_VERSION='"$(VERSION)"' \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) -MMD -MP
ALL_LDLIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm -lpthread
ifneq ($(CI),)
ALL_CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Every .c under processor/ and state/ except main.c goes into one static library that the
# binary, the unit tests and the benches link against.
LIB_SRC  := $(filter-out processor/cli/main.c,$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libchurnstream.a
BIN      := $(BUILD)/churnstream
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
# Only pattern rules name the support objects, which would make them intermediate files
# that make deletes after each link (and rebuilds next time).
.SECONDARY: $(TEST_SUPPORT_OBJ)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test test-unit test-integration test-python demo bench fmt install clean \
	check-deps fuzz docs

all: $(BIN) churnstream

churnstream: $(BIN)
	@ln -sf $(BIN) churnstream

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The feature transform's log1p is written to vectorize (processor/core/fastlog.c); gcc's -O2
# very cheap cost model leaves it scalar (clang vectorizes it at -O2 and has no such flag).
ifeq ($(shell $(CC) --version 2>/dev/null | grep -ci clang),0)
$(BUILD)/processor/core/fastlog.o: ALL_CFLAGS += -fvect-cost-model=dynamic
endif

# schemas/*.avsc are compiled into the binary as C byte arrays (event.avsc: the codec's
# reader schema; alert.avsc: the alert encoder's schema, for its fingerprint), so the
# installed binary never depends on finding a schema file at run time.
GEN := $(BUILD)/gen
ALL_CFLAGS += -I$(GEN)
$(GEN)/%_avsc.h: schemas/%.avsc
	@mkdir -p $(dir $@)
	@{ echo '/* Generated from $< by the Makefile; do not edit. */'; \
	  echo 'const char cs_$*_avsc_json[] = {'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0x00};'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/processor/codec/codec_schema.o: $(GEN)/event_avsc.h
$(BUILD)/processor/alerts/alert_codec.o: $(GEN)/alert_avsc.h
$(BUILD)/processor/daemon/compose_wire.o: $(GEN)/retention_message_avsc.h

# Helper the python interop tests drive (tests/python/avro_tool.c); not installed.
$(BUILD)/tests/python/avro_tool: tests/python/avro_tool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS)

# Helper the alert interop test drives (tests/python/test_alert_avro.py); not installed.
$(BUILD)/tests/python/alert_tool: tests/python/alert_tool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS)

# Helper the BG/NBD reference test drives (tests/python/test_bgnbd_reference.py); not installed.
$(BUILD)/tests/python/bgnbd_tool: tests/python/bgnbd_tool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS)

# Helper of the exactly-once crash test (tests/e2e/test_run_exactly_once.sh); not installed.
$(BUILD)/tests/tools/eo_tool: tests/tools/eo_tool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The revision `--version` reports, in a header rewritten only when HEAD moves: a commit
# rebuilds main.o (a -D flag would leave the one built at the previous commit in place).
REV_H := $(BUILD)/gen/revision.h
$(REV_H): FORCE
	@mkdir -p $(dir $@)
	@echo '#define CS_GIT_REV "$(GIT_REV)"' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/processor/cli/main.o: $(REV_H)
$(BUILD)/processor/cli/main.o: ALL_CFLAGS += -include $(REV_H)
.PHONY: FORCE
FORCE:

$(BIN): $(BUILD)/processor/cli/main.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB) $(TEST_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/support $(ALL_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(LIB) \
		$(ALL_LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/tests/integration/%: tests/integration/%.c $(LIB) $(TEST_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/support $(ALL_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(LIB) \
		$(ALL_LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS)

# deps: Debian packages (apt, only when something is missing), the Kafka broker jars (Maven,
# cached in ~/.cache/churnstream) and the Python test packages (pip, cached).
deps:
	@bash tests/services/deps.sh

check-deps:
	@$(PKG_CONFIG) --exists $(PKGS) cmocka || { echo "missing libraries: run 'make deps'" >&2; exit 1; }

test-unit: check-deps $(BIN) $(UNIT_BIN)
	@bash tests/run-tests.sh unit $(UNIT_BIN)

test-integration: check-deps $(BIN) $(INTEG_BIN)
	@bash tests/run-tests.sh integration $(INTEG_BIN)

# Targets that start with `deps` build in a second make: the compiler and linker flags come
# from pkg-config, which this make asked while parsing, before `deps` installed anything, so
# on a fresh machine they were empty and the first link failed (issue 11). The recursive
# make parses again, after `deps`. tests/e2e/test_hostile.sh proves it with a pkg-config
# that finds nothing in the first parse.
# The README's test command: installs what is missing, builds, runs unit tests, starts real
# Redis and a real Kafka broker, runs integration, e2e and python tests, stops the services.
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(INTEG_BIN)
	@bash tests/run-all.sh $(BUILD)

# The demo and the benches need no language model: the model venv (6 minutes the first
# time) is left to `make deps` / `make test`.
demo:
	@bash tests/services/deps.sh --no-llm
	@$(MAKE) --no-print-directory all
	@bash tests/e2e/demo.sh $(BIN)

bench:
	@bash tests/services/deps.sh --no-llm
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@bash bench/run.sh $(BUILD)

fuzz:
	@bash tests/fuzz/run.sh

docs: $(BIN)
	python3 tests/tools/readme_refs.py $(BIN) README.md --update

fmt:
	clang-format -i $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.[ch])) $(wildcard tests/unit/*.c tests/integration/*.c \
		tests/support/*.[ch] tests/fuzz/*.c bench/*.c)

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/churnstream/schemas
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/churnstream
	install -m 0644 $(wildcard schemas/*.avsc) $(DESTDIR)$(PREFIX)/share/churnstream/schemas/

clean:
	rm -rf build build-san churnstream

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
