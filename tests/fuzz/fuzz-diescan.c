/*
 * fuzz-diescan: libFuzzer target for kerf-detect's one-pass die event
 * reader (lib/die_fields.c) against jansson: whenever die_fields_scan
 * takes an input, json_loadb (flags 0, as kerf-detect) must parse it and
 * die_fields_from_json must read the same values from it.  A difference
 * is a crash (trap).
 *
 * Build: scripts/fuzz (clang -fsanitize=fuzzer,address,undefined with
 * the lib/ sources).  Run: build/fuzz/fuzz-diescan CORPUS_DIR
 */
#include "die_fields.h"

#include <jansson.h>
#include <stdint.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct die_fields scanned, parsed;
	json_t *ev;

	if (!die_fields_scan((const char *)data, size, &scanned))
		return 0;
	ev = json_loadb((const char *)data, size, 0, NULL);
	if (!ev)
		__builtin_trap();
	die_fields_from_json(ev, &parsed);
	if (!die_fields_equal(&scanned, &parsed))
		__builtin_trap();
	json_decref(ev);
	return 0;
}
