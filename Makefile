# Harbor - build every chapter, the echo backend and the tests.
#
#   make            build/echo and build/harbor-NN for every chapters/NN-*/
#   make test       unit tests, then every chapter's scenarios against it
#   make sanitize   the same suites under ASan+UBSan, then under TSan
#   make lint       clang-format check and cppcheck
#   make demo       two echo backends and Harbor on :9090 (CH=NN picks one)
#   make test-mine CH=NN BIN=path   chapter NN's scenarios against your binary
#
# A chapter is any chapters/NN-slug/ directory: one pattern rule builds it,
# so adding a chapter needs no edit here.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  := -std=c11 -Wall -Wextra -Werror $(OPT) -g -pthread \
           -D_DEFAULT_SOURCE $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS)

CHAPTER_DIRS := $(sort $(wildcard chapters/[0-9][0-9]-*))
CHAPTERS     := $(foreach d,$(CHAPTER_DIRS),$(firstword $(subst -, ,$(notdir $(d)))))
HARBORS      := $(CHAPTERS:%=$(BUILD)/harbor-%)
LAST         := $(lastword $(CHAPTERS))

COMMON_SRC := common/config.c common/health.c common/log.c common/net.c \
              common/pool.c common/strategy.c
COMMON_OBJ := $(COMMON_SRC:common/%.c=$(BUILD)/common/%.o)
COMMON_HDR := $(wildcard common/*.h)

UNIT_SRC     := $(sort $(wildcard tests/unit_*.c))
SCENARIO_SRC := tests/harness.c tests/harness_net.c tests/harness_stage.c \
                tests/scenarios.c \
                $(sort $(wildcard tests/scenario_[0-9][0-9]*.c))
TEST_HDR     := $(wildcard tests/*.h)

# Check is only needed by the tests; ask pkg-config lazily.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

.PHONY: all test test-unit test-scenarios test-mine sanitize lint demo \
        deps clean
.DELETE_ON_ERROR:

all: $(BUILD)/echo $(HARBORS)

$(BUILD)/common/%.o: common/%.c $(COMMON_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/echo: common/echo.c $(COMMON_OBJ) $(COMMON_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Icommon -o $@ common/echo.c $(COMMON_OBJ) $(LDFLAGS)

# build/harbor-NN from chapters/NN-*/*.c: the stem is the chapter number.
.SECONDEXPANSION:
$(BUILD)/harbor-%: $$(wildcard chapters/$$*-*/*.c chapters/$$*-*/*.h) \
                   $(COMMON_OBJ) $(COMMON_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Icommon -o $@ $(wildcard chapters/$*-*/*.c) \
	    $(COMMON_OBJ) $(LDFLAGS)

$(BUILD)/tests/unit: $(UNIT_SRC) $(COMMON_OBJ) $(COMMON_HDR) $(TEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Icommon -o $@ $(UNIT_SRC) \
	    $(COMMON_OBJ) $(CHECK_LIBS) $(LDFLAGS)

$(BUILD)/tests/scenarios: $(SCENARIO_SRC) $(COMMON_OBJ) $(COMMON_HDR) \
                          $(TEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Icommon -o $@ $(SCENARIO_SRC) \
	    $(COMMON_OBJ) $(CHECK_LIBS) $(LDFLAGS)

deps:
	@scripts/install-deps

# The unit tests, then each chapter's binary against the scenarios of that
# chapter and of every chapter before it.
test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/unit \
	    $(BUILD)/tests/scenarios
	@$(MAKE) --no-print-directory test-unit test-scenarios

test-unit:
	$(BUILD)/tests/unit

test-scenarios:
	@set -e; for ch in $(CHAPTERS); do \
	    echo "== scenarios against $(BUILD)/harbor-$$ch"; \
	    HARBOR_BIN=$(BUILD)/harbor-$$ch HARBOR_CH=$$ch \
	    ECHO_BIN=$(BUILD)/echo $(BUILD)/tests/scenarios; \
	done

# Run chapter CH's scenarios (and every earlier chapter's) against BIN.
test-mine: deps
	@test -n "$(CH)" -a -n "$(BIN)" || \
	    { echo "usage: make test-mine CH=NN BIN=path/to/harbor"; exit 2; }
	@$(MAKE) --no-print-directory $(BUILD)/echo $(BUILD)/tests/scenarios
	HARBOR_BIN=$(BIN) HARBOR_CH=$(CH) ECHO_BIN=$(BUILD)/echo \
	    $(BUILD)/tests/scenarios

# Sanitizer reports go to log files (a balancer under test is stopped by a
# signal, so its exit status cannot carry them); any file there fails the run.
SAN_ENV = ASAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/$(1)/report:abort_on_error=1 \
          UBSAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/$(1)/report:print_stacktrace=1:halt_on_error=1 \
          TSAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/$(1)/report:second_deadlock_stack=1:atexit_sleep_ms=0
sanitize: deps
	@rm -f $(BUILD)/asan/report.* $(BUILD)/tsan/report.*
	$(call SAN_ENV,asan) $(MAKE) --no-print-directory BUILD=$(BUILD)/asan \
	    OPT=-O1 SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    all $(BUILD)/asan/tests/unit $(BUILD)/asan/tests/scenarios test-unit test-scenarios
	$(call SAN_ENV,tsan) $(MAKE) --no-print-directory BUILD=$(BUILD)/tsan \
	    OPT=-O1 SANFLAGS="-fsanitize=thread" \
	    all $(BUILD)/tsan/tests/unit $(BUILD)/tsan/tests/scenarios test-unit test-scenarios
	@if ls $(BUILD)/asan/report.* $(BUILD)/tsan/report.* >/dev/null 2>&1; then \
	    cat $(BUILD)/asan/report.* $(BUILD)/tsan/report.* 2>/dev/null; \
	    echo "sanitize: reports above"; exit 1; fi
	@echo "sanitize: clean"

LINT_FILES = $(wildcard common/*.[ch] chapters/*/*.[ch] tests/*.[ch])
lint:
	@echo "clang-format --dry-run --Werror <$(words $(LINT_FILES)) files>"
	@clang-format --dry-run --Werror $(LINT_FILES)
	@echo "cppcheck --enable=warning,performance,portability <same files>"
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --std=c11 -D__GNUC__ -Icommon $(LINT_FILES)
	@echo "lint: clean"

demo: all
	@scripts/demo $(CH)

clean:
	rm -rf $(BUILD)
