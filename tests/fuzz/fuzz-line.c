/*
 * fuzz-line: libFuzzer target for the line reader (lib/line.c) and the
 * envelope (envelope_get, event_peek).  The first byte sets the line
 * limit (1..256, small so that the too-long path is taken often); the
 * rest is the input, read from a memfd like stdin.  It checks what the
 * reader promises: every line and every cut line is where the input
 * says, offsets and line numbers add up, nothing is lost, and a line is
 * LINE_CONTROL exactly when a plain byte-by-byte scan finds a raw control
 * byte that JSON allows nowhere.
 */
#include "util.h"
#include "log.h"
#include "line.h"
#include "event.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference for line_control_at: one byte at a time, no shortcut. */
static size_t control_ref(const unsigned char *s, size_t len)
{
	int in_str = 0, esc = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 && (in_str || (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')))
			return i;
		if (esc)
			esc = 0;
		else if (in_str && s[i] == '\\')
			esc = 1;
		else if (s[i] == '"')
			in_str = !in_str;
	}
	return len;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("KERF_LOG_LEVEL", "error", 1);
	log_init("fuzz-line");
	return 0;
}

static void envelope(const char *line, size_t len)
{
	json_error_t err;
	struct envelope env;
	char msg[256];
	const char *val;
	size_t vlen;
	json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);

	if (event_peek(line, len, "run", &val, &vlen) &&
	    (val < line || val + vlen > line + len))
		abort();
	(void)event_peek_type(line, len);
	if (ev && envelope_get(ev, &env, msg, sizeof msg) == 0) {
		if (!env.run || !env.t || !env.id || strlen(env.id) != 16)
			abort();
		/* A valid envelope is an object whose members peek finds. */
		if (!event_peek(line, len, "seq", &val, &vlen))
			abort();
	}
	json_decref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct line_reader lr;
	enum line_status st;
	size_t max, in_len, pos = 0;
	const char *in;
	uint64_t lines = 0;
	char *line;
	size_t len;
	int fd;

	if (size < 1)
		return 0;
	max = 1 + data[0] % 256;
	in = (const char *)data + 1;
	in_len = size - 1;
	fd = memfd_create("fuzz-line", MFD_CLOEXEC);
	if (fd < 0 || write_all(fd, in, in_len) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	line_reader_init(&lr, fd, max);
	while ((st = line_read(&lr, &line, &len)) != LINE_EOF) {
		if (st == LINE_ERROR || st == LINE_INTR)
			abort();
		lines++;
		if (lr.lineno != lines || lr.offset != pos)
			abort();
		if (st == LINE_OK || st == LINE_CONTROL) {
			size_t at = control_ref((const unsigned char *)line, len);
			if (len > max || line[len] != '\0' || memchr(line, '\n', len) ||
			    memcmp(line, in + pos, len) != 0)
				abort();
			if (st == LINE_OK ? at != len : at != lr.control_at || at >= len)
				abort();
			if (line_control_at(line, len) != at)
				abort();
			if (st == LINE_OK)
				envelope(line, len);
		} else {
			size_t keep = len < LINE_PREFIX_MAX ? len : LINE_PREFIX_MAX;
			if (len <= max || lr.prefix_len != keep || memcmp(line, in + pos, keep) != 0)
				abort();
		}
		if (pos + len > in_len)
			abort();
		if (pos + len < in_len && in[pos + len] != '\n')
			abort();
		if (lr.missing_newline != (pos + len == in_len))
			abort();
		pos += len + (pos + len < in_len);
	}
	if (pos != in_len || lr.consumed != in_len)
		abort();
	line_reader_release(&lr);
	close(fd);
	return 0;
}
