/*
 * t-event: exercise libkerf's envelope helpers from the shell.
 *   t-event id RUN SEQ          the event id, 16 hex digits
 *   t-event peek KEY            top-level KEY of the line on stdin, or "absent"
 *   t-event time RFC3339        parse and format again
 *   t-event b64 enc|dec         base64 of stdin, or stdin decoded
 *   t-event sanitize MAX        stdin as valid UTF-8, cut to MAX bytes
 */
#include "util.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "out.h"
#include "base64.h"
#include "reject.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static char *slurp(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap);
	ssize_t r;
	while ((r = read(0, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (cap - n < 2)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	size_t len;
	char *in;

	log_init(argv[0]);
	if (argc == 4 && !strcmp(argv[1], "id")) {
		char hx[17];
		uint64_t seq;
		if (parse_u64(argv[3], &seq) != 0)
			cli_usage_error("bad seq");
		hex64(event_id(argv[2], seq), hx);
		puts(hx);
	} else if (argc == 3 && !strcmp(argv[1], "peek")) {
		const char *v;
		size_t vlen;
		in = slurp(&len);
		if (event_peek(in, len, argv[2], &v, &vlen))
			printf("%.*s\n", (int)vlen, v);
		else
			puts("absent");
		free(in);
	} else if (argc == 3 && !strcmp(argv[1], "time")) {
		struct timespec ts;
		char out[32];
		if (event_time_parse(argv[2], &ts) != 0) {
			puts("invalid");
			return 65;
		}
		event_time_fmt(&ts, out);
		puts(out);
	} else if (argc == 3 && !strcmp(argv[1], "b64")) {
		in = slurp(&len);
		if (!strcmp(argv[2], "enc")) {
			char *out = xmalloc(base64_encoded_len(len) + 1);
			base64_encode(in, len, out);
			puts(out);
			free(out);
		} else {
			unsigned char *out = xmalloc(len / 4 * 3 + 1);
			long n = base64_decode(in, len, out);
			if (n < 0) {
				puts("invalid");
				free(out);
				free(in);
				return 65;
			}
			fwrite(out, 1, (size_t)n, stdout);
			free(out);
		}
		free(in);
	} else if (argc == 3 && !strcmp(argv[1], "sanitize")) {
		int cut;
		char *s;
		in = slurp(&len);
		s = utf8_sanitize(in, len, strtoul(argv[2], NULL, 10), &cut);
		printf("%s|%d\n", s, cut);
		free(s);
		free(in);
	} else {
		cli_usage_error("usage: t-event id|peek|time|b64|sanitize ...");
	}
	return fshut(stdout, "standard output");
}
