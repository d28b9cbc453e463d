# Harbor - build every chapter, the echo backend and the tests.
#
#   make            build/echo and build/harbor-NN for every chapters/NN-*/
#   make test       unit tests, then every chapter's scenarios against it
#   make tests      build the test programs, run none
#   make test-transcripts  run every console transcript of the READMEs
#   make sanitize   the same suites under ASan+UBSan, then under TSan
#                   (make -j2 test, -j2 sanitize: builds in parallel, tests
#                   one at a time)
#   make lint       -Werror build, clang-format, cppcheck, check-chapters,
#                   check-contract
#   make demo       two echo backends and Harbor on :9090 (CH=NN picks one)
#   make mine       build/harbor-mine from mine/, your own chapter
#                   (scripts/start NN makes mine/)
#   make test-mine  its chapter's scenarios and every earlier chapter's
#                   against it; ONLY=1: its own alone; CH=NN BIN=path:
#                   chapter NN's against any balancer
#   make doctor     is this machine ready?  Says what is missing, and how
#                   to fix it
#   make fuzz       fuzz the HTTP parser for FUZZ_SECONDS (60) with clang's
#                   libFuzzer, on a corpus in build/fuzz/corpus seeded
#                   from tests/fuzz/http/ (test-unit replays those seeds)
#
# A chapter is any chapters/NN-slug/ directory: one pattern rule builds it,
# so adding a chapter needs no edit here.
#
# Warnings are not errors by default: a newer compiler than ours may warn
# about something new, and that must not stop a workshop.  STRICT=1 (on the
# command line or in the environment) adds -Werror, as CI does.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
WERROR  := $(if $(filter 1,$(STRICT)),-Werror)
CFLAGS  := -std=c11 -Wall -Wextra $(WERROR) $(OPT) -g -pthread \
           -D_DEFAULT_SOURCE $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS)

# chapter_nn: chapters/07-leastconn -> 07
chapter_nn = $(firstword $(subst -, ,$(notdir $(1))))

CHAPTER_DIRS := $(sort $(wildcard chapters/[0-9][0-9]-*))
CHAPTERS     := $(foreach d,$(CHAPTER_DIRS),$(call chapter_nn,$(d)))
HARBORS      := $(CHAPTERS:%=$(BUILD)/harbor-%)
LAST         := $(lastword $(CHAPTERS))

# Two directories with one number, say a copy chapters/03-mine next to
# chapters/03-inflight, would both go into build/harbor-03 and fail to link
# with two main()s.  Say so plainly instead.  A chapter of your own belongs
# in mine/ (scripts/start NN), which no chapter rule reads.
DUP_NN := $(strip $(foreach n,$(sort $(CHAPTERS)),$(if \
            $(word 2,$(filter $(n),$(CHAPTERS))),$(n))))
ifneq ($(DUP_NN),)
ifneq ($(filter-out clean doctor,$(or $(MAKECMDGOALS),all)),)
$(error chapter $(firstword $(DUP_NN)) has more than one directory: \
  $(filter chapters/$(firstword $(DUP_NN))-%,$(CHAPTER_DIRS)).  Move your \
  copy out of chapters/; to write chapter $(firstword $(DUP_NN)) yourself, \
  run scripts/start $(firstword $(DUP_NN)) and work in mine/)
endif
endif

# Library code shared by every chapter; the echo backend is a program of its
# own in common/echo/.
COMMON_SRC := $(sort $(wildcard common/*.c))
ECHO_SRC   := $(sort $(wildcard common/echo/*.c))

UNIT_SRC     := $(sort $(wildcard tests/unit_*.c))
SCENARIO_SRC := tests/harness.c tests/harness_metrics.c tests/harness_net.c \
                tests/harness_stage.c \
                tests/scenarios.c \
                $(sort $(wildcard tests/scenario_[0-9][0-9]*.c))

# Every source compiles to an object of its own under $(BUILD), chapter NN's
# under $(BUILD)/ch/NN/.  Beside each object the compiler writes a .d file
# naming the headers it read (-MMD), with an empty rule per header so that
# deleting one is no error (-MP).  Including those files, at the end, is
# what makes touching a header rebuild exactly the objects that read it.
DEPFLAGS := -MMD -MP

COMMON_OBJ   := $(COMMON_SRC:common/%.c=$(BUILD)/common/%.o)
ECHO_OBJ     := $(ECHO_SRC:common/%.c=$(BUILD)/common/%.o)
CHAPTER_OBJ  := $(foreach d,$(CHAPTER_DIRS),$(patsubst $(d)/%.c, \
                  $(BUILD)/ch/$(call chapter_nn,$(d))/%.o,$(wildcard $(d)/*.c)))
UNIT_OBJ     := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%.o)
SCENARIO_OBJ := $(SCENARIO_SRC:tests/%.c=$(BUILD)/tests/%.o)

# chapter_obj: 07 -> the objects of chapter 07
chapter_obj = $(filter $(BUILD)/ch/$(1)/%,$(CHAPTER_OBJ))

# A chapter module's unit tests.  tests/chapter_<name>.c is a Check program
# for the <name>.c that some chapters have, run against each of them:
# tests/chapter_least.c tests chapters/07-leastconn/least.c and every later
# chapter's copy.  Each pair is a word NN/name in CHAPTER_TESTS, and
# $(BUILD)/tests/name-NN is built from the test, that chapter's name.c and
# common/.
CHAPTER_TESTS := $(foreach t,$(patsubst tests/chapter_%.c,%,$(sort \
                   $(wildcard tests/chapter_*.c))),$(foreach n,$(CHAPTERS), \
                   $(if $(wildcard chapters/$(n)-*/$(t).c),$(n)/$(t))))

# For a pair NN/name: its chapter number, the test, the source it tests,
# that chapter's directory, the test's object and the program.
ct_nn   = $(patsubst %/,%,$(dir $(1)))
ct_test = tests/chapter_$(notdir $(1)).c
ct_src  = $(firstword $(wildcard chapters/$(call ct_nn,$(1))-*/$(notdir $(1)).c))
ct_dir  = $(patsubst %/,%,$(dir $(call ct_src,$(1))))
ct_obj  = $(BUILD)/tests/ch/$(dir $(1))chapter_$(notdir $(1)).o
ct_prog = $(BUILD)/tests/$(notdir $(1))-$(call ct_nn,$(1))

CHAPTER_TEST_OBJ  := $(foreach p,$(CHAPTER_TESTS),$(call ct_obj,$(p)))
CHAPTER_TEST_PROG := $(foreach p,$(CHAPTER_TESTS),$(call ct_prog,$(p)))

# Check is only needed by the tests; ask pkg-config lazily.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

.PHONY: all tests test test-unit test-scenarios test-transcripts mine test-mine _mine \
        _test-mine sanitize lint demo doctor deps clean fuzz
.DELETE_ON_ERROR:
.SECONDEXPANSION:

all: $(BUILD)/echo $(HARBORS)

$(BUILD)/common/%.o: common/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Icommon -c -o $@ $<

$(BUILD)/echo: $(ECHO_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

# The chaos suite's load client (scripts/chaos, scripts/soak): one file, no
# Check and no common/, so it builds on its own.  Not part of all.
$(BUILD)/loadgen: tests/loadgen.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# $(BUILD)/ch/NN/foo.o from chapters/NN-*/foo.c: the stem is NN/foo.
$(BUILD)/ch/%.o: $$(wildcard chapters/$$(*D)-*/$$(*F).c)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -I$(<D) -Icommon -c -o $@ $<

# Only that pattern rule names the chapter objects, so make would take them
# for intermediate files and delete them after every build.
.SECONDARY: $(CHAPTER_OBJ)

# build/harbor-NN from the objects of chapters/NN-*/: the stem is the
# chapter number.
$(BUILD)/harbor-%: $$(call chapter_obj,$$*) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) $(DEPFLAGS) -Icommon -c -o $@ $<

$(BUILD)/tests/unit: $(UNIT_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDFLAGS)

$(BUILD)/tests/scenarios: $(SCENARIO_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDFLAGS)

# The two rules of one pair NN/name: the test compiled against chapter NN's
# headers, and the program.
define chapter_test
$(call ct_obj,$(1)): $(call ct_test,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $$(CHECK_CFLAGS) $$(DEPFLAGS) \
	    -I$(call ct_dir,$(1)) -Icommon -c -o $$@ $$<

$(call ct_prog,$(1)): $(call ct_obj,$(1)) $(BUILD)/ch/$(1).o $(COMMON_OBJ)
	$$(CC) $$(CFLAGS) -o $$@ $$^ $$(CHECK_LIBS) $$(LDFLAGS)
endef
$(foreach p,$(CHAPTER_TESTS),$(eval $(call chapter_test,$(p))))

# The HTTP parser's fuzz target, tests/fuzz_http.c, is also linked with a
# plain main() of its own, so that any compiler can replay the seed corpus
# (and make sanitize replays it under the sanitizers).
FUZZ_REPLAY_OBJ := $(BUILD)/tests/fuzz_replay.o $(BUILD)/tests/fuzz_http.o

$(BUILD)/tests/fuzz_replay: $(FUZZ_REPLAY_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

# Every test program; none of them is needed to build Harbor.
tests: $(BUILD)/tests/unit $(BUILD)/tests/scenarios $(CHAPTER_TEST_PROG) \
       $(BUILD)/tests/fuzz_replay

deps:
	@scripts/install-deps --tests

# The unit tests (of common/, then of the chapter modules), then each
# chapter's binary against the scenarios of that chapter and of every
# chapter before it.
test: deps
	@$(MAKE) --no-print-directory all tests
	@$(MAKE) --no-print-directory -j1 test-unit test-scenarios

# Every console transcript in the READMEs, run and compared with what it
# shows (each README in network and process namespaces of its own).
test-transcripts: all
	@scripts/check-transcripts

test-unit:
	$(BUILD)/tests/unit
	$(BUILD)/tests/fuzz_replay tests/fuzz/http
	@$(foreach p,$(CHAPTER_TESTS), \
	    echo "== unit tests of $(call ct_src,$(p))" && $(call ct_prog,$(p)) &&) :

# TEST_JOBS chapters' scenarios at a time (CI runs 2: the scenarios mostly
# wait on sockets).  With more than one, each run's output is kept in a file
# and shown whole when it ends, so that runs never interleave.
TEST_JOBS ?= 1
test-scenarios:
	@set -e; if [ "$(TEST_JOBS)" = 1 ]; then for ch in $(CHAPTERS); do \
	    echo "== scenarios against $(BUILD)/harbor-$$ch"; \
	    HARBOR_BIN=$(BUILD)/harbor-$$ch HARBOR_CH=$$ch \
	    ECHO_BIN=$(BUILD)/echo $(BUILD)/tests/scenarios; \
	done; else mkdir -p $(BUILD)/scenarios; \
	printf '%s\n' $(CHAPTERS) | xargs -P "$(TEST_JOBS)" -I NN sh -c '\
	    log=$(BUILD)/scenarios/NN.log; \
	    HARBOR_BIN=$(BUILD)/harbor-NN HARBOR_CH=NN ECHO_BIN=$(BUILD)/echo \
	        $(BUILD)/tests/scenarios >$$log 2>&1 && rc=0 || rc=$$?; \
	    echo "== scenarios against $(BUILD)/harbor-NN"; cat $$log; \
	    exit $$rc' || { echo "test-scenarios: failures above" >&2; exit 1; }; fi

# Your own chapter, in mine/ (scripts/start NN makes it), is built like a
# chapter: the same flags, -Imine -Icommon, objects under $(BUILD)/mine/.
MINE_SRC := $(sort $(wildcard mine/*.c))
MINE_OBJ := $(MINE_SRC:mine/%.c=$(BUILD)/mine/%.o)

mine:
	@test -d mine || { echo "make mine: there is no mine/ yet;" \
	    "start a chapter of your own with scripts/start NN" >&2; exit 2; }
	@test -n "$(MINE_SRC)" || { echo "make mine: mine/ has no .c file yet;" \
	    "write mine/main.c (see mine/README.md)" >&2; exit 2; }
	@$(MAKE) --no-print-directory _mine

# The targets that only build, for the recursive makes above and below: a
# recipe of their own keeps make from saying "is up to date".
_mine: $(BUILD)/harbor-mine
	@:
_test-mine: $(BUILD)/echo $(BUILD)/tests/scenarios $(if $(BIN),,mine)
	@:

$(BUILD)/mine/%.o: mine/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Imine -Icommon -c -o $@ $<

# An explicit rule, so that the pattern rule for build/harbor-NN does not
# take "mine" for a chapter number.
$(BUILD)/harbor-mine: $(MINE_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

# Chapter CH's scenarios, and every earlier chapter's, against BIN; with
# ONLY=1, chapter CH's own alone (CK_INCLUDE_TAGS=chNN).  CH defaults to
# the number in mine/CHAPTER and BIN to build/harbor-mine, which is built
# first; given both, any balancer can be tested.  TEST_CH is CH as two
# digits ("3" is 03), or empty when it is no number.
TEST_CH = $(shell ch='$(or $(CH),$(shell cat mine/CHAPTER 2>/dev/null))'; \
            n=$$(expr "$$ch" + 0 2>/dev/null) && printf %02d "$$n")
TEST_MINE = $(strip $(if $(filter 1,$(ONLY)),CK_INCLUDE_TAGS=ch$(TEST_CH)) \
            HARBOR_BIN=$(or $(BIN),$(BUILD)/harbor-mine) HARBOR_CH=$(TEST_CH) \
            ECHO_BIN=$(BUILD)/echo $(BUILD)/tests/scenarios)
test-mine: deps
	@test -n "$(TEST_CH)" || { \
	    echo "usage: make test-mine [CH=NN] [BIN=path/to/harbor] [ONLY=1]"; \
	    echo "CH defaults to the chapter in mine/CHAPTER, made by scripts/start NN,"; \
	    echo "and BIN to build/harbor-mine, built from mine/"; \
	    $(if $(CH),echo "CH=$(CH) is not a chapter number";) exit 2; } >&2
	@$(MAKE) --no-print-directory _test-mine
	$(TEST_MINE)

# Sanitizer reports go to log files (a balancer under test is stopped by a
# signal, so its exit status cannot carry them); any file there fails the run.
SAN_ENV = ASAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/$(1)/report:abort_on_error=1 \
          UBSAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/$(1)/report:print_stacktrace=1:halt_on_error=1 \
          TSAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/$(1)/report:second_deadlock_stack=1:atexit_sleep_ms=0
#
# Each build takes the -j it is given (make -j2 sanitize); the tests after
# it always run one at a time.
ASAN_MAKE = $(call SAN_ENV,asan) $(MAKE) --no-print-directory BUILD=$(BUILD)/asan \
    OPT=-O1 SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
TSAN_MAKE = $(call SAN_ENV,tsan) $(MAKE) --no-print-directory BUILD=$(BUILD)/tsan \
    OPT=-O1 SANFLAGS="-fsanitize=thread"
sanitize: deps
	@rm -f $(BUILD)/asan/report.* $(BUILD)/tsan/report.*
	$(ASAN_MAKE) all tests
	$(ASAN_MAKE) -j1 test-unit test-scenarios
	$(TSAN_MAKE) all tests
	$(TSAN_MAKE) -j1 test-unit test-scenarios
	@if ls $(BUILD)/asan/report.* $(BUILD)/tsan/report.* >/dev/null 2>&1; then \
	    cat $(BUILD)/asan/report.* $(BUILD)/tsan/report.* 2>/dev/null; \
	    echo "sanitize: reports above"; exit 1; fi
	@echo "sanitize: clean"

# The fuzzer needs clang (libFuzzer comes with it).  It works on a copy of
# the seeds in $(BUILD)/fuzz/corpus, which grows from run to run; the seeds
# in the tree are never written.  A crash leaves its input in $(BUILD)/fuzz/
# as crash-<sha1>: replay it with $(BUILD)/fuzz/http <file>, or with
# $(BUILD)/tests/fuzz_replay under gdb.  UBSan findings abort too
# (-fno-sanitize-recover), so the fuzzer keeps their inputs.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -g -O1 -std=c11 -Wall -Wextra $(WERROR) -D_DEFAULT_SOURCE \
                -Icommon

$(BUILD)/fuzz/http: tests/fuzz_http.c common/http.c common/http.h
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
	    echo "make fuzz: $(FUZZ_CC) not found; the fuzzer needs clang with" \
	        "libFuzzer (Debian/Ubuntu: sudo apt-get install clang)" >&2; \
	    exit 2; }
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz_http.c common/http.c

fuzz: $(BUILD)/fuzz/http
	@mkdir -p $(BUILD)/fuzz/corpus
	cp tests/fuzz/http/* $(BUILD)/fuzz/corpus/
	$(BUILD)/fuzz/http -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus

# Lint builds everything with -Werror in a directory of its own (the flags
# differ, and make would not rebuild a plain build's objects for that), then
# checks the layout, the code, and the chapters against each other.
LINT_FILES = $(wildcard common/*.[ch] common/echo/*.[ch] chapters/*/*.[ch] tests/*.[ch])
lint: deps
	@echo "cc -Werror <every chapter, echo and the tests, in $(BUILD)/strict>"
	@$(MAKE) --no-print-directory -s BUILD=$(BUILD)/strict STRICT=1 all tests \
	    $(BUILD)/strict/loadgen
	@echo "clang-format --dry-run --Werror <$(words $(LINT_FILES)) files>"
	@clang-format --dry-run --Werror $(LINT_FILES)
	@echo "cppcheck --enable=warning,performance,portability <same files>"
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --std=c11 -D__GNUC__ -Icommon $(LINT_FILES)
	@echo "scripts/check-chapters"
	@scripts/check-chapters >/dev/null
	@scripts/check-contract
	@echo "lint: clean"

demo: all
	@scripts/demo $(CH)

# A checkout with CRLF line endings cannot start any script, this one
# included, so make looks for that first (make itself reads CRLF well).
doctor:
	@if grep -q "$$(printf '\r')" scripts/doctor; then \
	    echo "MISSING  LF line endings: this checkout has CRLF ones, and no" \
	        "script of it can start; clone it again from Linux (in WSL," \
	        "into your home: cd ~ && git clone ...)"; exit 1; fi
	@scripts/doctor

clean:
	rm -rf $(BUILD)

# The header dependencies the compiler wrote (see DEPFLAGS).
-include $(wildcard $(patsubst %.o,%.d,$(COMMON_OBJ) $(ECHO_OBJ) \
    $(CHAPTER_OBJ) $(MINE_OBJ) $(UNIT_OBJ) $(SCENARIO_OBJ) \
    $(CHAPTER_TEST_OBJ) $(FUZZ_REPLAY_OBJ)))
