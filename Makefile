# kerf: make | make check | make run | make install PREFIX=/usr/local
#
# Programs are built into bin/; `make check SAN=1` builds an ASan+UBSan
# variant into build/san/bin and runs every test against it.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
MANDIR   = $(PREFIX)/share/man
PROFDIR  = $(PREFIX)/share/kerf/profiles
COMPDIR  = $(PREFIX)/share/bash-completion/completions

CC      ?= cc
PKGS     = libpipeline jansson libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

WARN     = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -pthread -Ilib $(PKG_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) -pthread

ifeq ($(SAN),1)
VARIANT  = san
ALL_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=address,undefined
OUT      = build/san/bin
else
VARIANT  = release
OUT      = bin
endif
OBJ      = build/$(VARIANT)

LIB_SRC  = $(wildcard lib/*.c)
LIB_OBJ  = $(LIB_SRC:lib/%.c=$(OBJ)/lib/%.o)
CMD_SRC  = $(wildcard cmd/*.c)
CMD_OBJ  = $(CMD_SRC:cmd/%.c=$(OBJ)/cmd/%.o)
PROGRAMS = $(CMD_SRC:cmd/%.c=%)
BINS     = $(PROGRAMS:%=$(OUT)/%)
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_BINS = $(UNIT_SRC:tests/unit/%.c=$(OBJ)/tests/%)
MANPAGES = $(wildcard man/*.1 man/*.5 man/*.7)
PROFILES = $(wildcard profiles/*.json)

.PHONY: all check run install uninstall clean deps units
# A program's object is an intermediate of the pattern rule that links
# it: make would delete it after the build, and the next `make` (make
# run, make install) would compile and link every program again, while
# the tests run them.
.SECONDARY: $(CMD_OBJ)
all: $(BINS)

# Programs look for tool profiles in ../profiles beside their directory
# (and ../share/kerf/profiles once installed): the sanitizer build's too.
ifeq ($(SAN),1)
all: build/san/profiles
build/san/profiles:
	@mkdir -p $(@D)
	ln -sfn ../../profiles $@
endif

# The detector's per-pixel loops are written for the vectoriser (unit
# stride, no aliasing); -O2 alone vectorises only loops of known length,
# and a sum in floating point only when it may be reordered (the same
# order in every run: -j1 and -jN give the same bytes).
$(OBJ)/lib/detect.o: ALL_CFLAGS += -ftree-vectorize -fvect-cost-model=dynamic \
	-fassociative-math -fno-signed-zeros -fno-trapping-math

$(OBJ)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(OBJ)/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(OBJ)/libkerf.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(OUT)/%: $(OBJ)/cmd/%.o $(OBJ)/libkerf.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(OBJ)/libkerf.a $(PKG_LIBS) $(if $(filter kerf-project,$*),$(CURSES_LIBS)) -lm

$(OBJ)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(OBJ)/libkerf.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(OBJ)/libkerf.a $(PKG_LIBS) -lm

units: $(UNIT_BINS)

deps:
	@scripts/deps

# make check: dependencies, build, then every test; the last line is
# "N passed, N failed" and the status is non-zero on any failure.
check: deps
	@$(MAKE) --no-print-directory all units
	@KERF_BIN=$(CURDIR)/$(OUT) KERF_UNIT=$(CURDIR)/$(OBJ)/tests SAN=$(SAN) scripts/check $(TESTS)

# make run: a supervised run of a small simulated lot into runs/<time>,
# with runs/latest pointing at it (so `bin/kerf status` finds it).
RUN_ARGS ?= --wafers 3
run: deps
	@$(MAKE) --no-print-directory all
	$(OUT)/kerf run $(RUN_ARGS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	install -d $(DESTDIR)$(PROFDIR)
	install -m 644 $(PROFILES) $(DESTDIR)$(PROFDIR)/
	if [ -f scripts/kerf.bash-completion ]; then \
		install -d $(DESTDIR)$(COMPDIR); \
		install -m 644 scripts/kerf.bash-completion $(DESTDIR)$(COMPDIR)/kerf; \
		for p in $(filter-out kerf,$(PROGRAMS)); do \
			ln -sf kerf $(DESTDIR)$(COMPDIR)/$$p; done; fi

uninstall:
	for p in $(PROGRAMS); do rm -f $(DESTDIR)$(BINDIR)/$$p; done
	for m in $(MANPAGES); do \
		s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	for p in $(PROGRAMS); do rm -f $(DESTDIR)$(COMPDIR)/$$p; done
	for f in $(PROFILES); do rm -f $(DESTDIR)$(PROFDIR)/$${f##*/}; done

clean:
	rm -rf bin build

-include $(wildcard $(OBJ)/lib/*.d $(OBJ)/cmd/*.d)
