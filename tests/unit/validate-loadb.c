/*
 * validate-loadb: the floor kerf-validate is measured against: read
 * standard input with the line reader and parse each line with
 * json_loadb, nothing else.  Prints "LINES parsed, BAD failed".
 * Usage: validate-loadb [MAX_LINE]
 */
#include "exitcode.h"
#include "log.h"
#include "line.h"
#include "out.h"

#include <jansson.h>
#include <stdlib.h>

#include "banned.h"

int main(int argc, char **argv)
{
	struct line_reader lr;
	enum line_status st;
	unsigned long long n = 0, bad = 0;
	char *line;
	size_t len;

	log_init(argv[0]);
	line_reader_init(&lr, 0, argc > 1 ? strtoull(argv[1], NULL, 10) : 16 << 20);
	while ((st = line_read(&lr, &line, &len)) != LINE_EOF) {
		json_error_t err;
		json_t *j;
		if (st == LINE_ERROR)
			return KERF_EX_IOERR;
		if (st != LINE_OK)
			continue;
		j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
		if (j)
			n++;
		else
			bad++;
		json_decref(j);
	}
	printf("%llu parsed, %llu failed\n", n, bad);
	line_reader_release(&lr);
	return fshut(stdout, "standard output");
}
