/*
 * fuzz-image: libFuzzer target for die image decoding (lib/image.c): a
 * die event line as kerf-detect's workers get it, through JSON, the w/h
 * and size checks, base64 and the XXH3 check.  Lines that name a "path"
 * are skipped: reading files the input names (/dev/zero...) tests the
 * file system, not the decoder.
 *
 * Build: scripts/fuzz (clang -fsanitize=fuzzer,address,undefined with
 * the lib/ sources).  Run: build/fuzz/fuzz-image -max_len=65536 CORPUS_DIR
 */
#include "image.h"

#include <stdint.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image img;
	const char *reason = NULL;
	char msg[256];
	static const char path_key[] = "\"path\"";

	if (memmem(data, size, path_key, sizeof path_key - 1))
		return 0;
	/* No size expected, then the size kerf-acquire --sim uses. */
	if (image_from_line((const char *)data, size, 0, 0, &img, &reason, msg, sizeof msg) == 0) {
		if (!img.px || img.w < 1 || img.h < 1)
			__builtin_trap();
		image_release(&img);
	} else if (!reason || !msg[0]) {
		__builtin_trap();
	}
	if (image_from_line((const char *)data, size, 64, 64, &img, &reason, msg, sizeof msg) == 0)
		image_release(&img);
	return 0;
}
