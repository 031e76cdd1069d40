/*
 * t-line: print what the line reader returns for stdin, one record per
 * line: "ok LINENO OFFSET LEN [nonl]", "control LINENO OFFSET LEN AT [nonl]"
 * or "long LINENO OFFSET LEN PREFIXLEN", then "eof". Usage: t-line MAX
 */
#include "log.h"
#include "line.h"
#include "cli.h"
#include "out.h"

#include <stdlib.h>

#include "banned.h"

int main(int argc, char **argv)
{
	struct line_reader lr;
	char *line;
	size_t len;
	enum line_status st;

	log_init(argv[0]);
	if (argc != 2)
		cli_usage_error("usage: t-line MAX");
	line_reader_init(&lr, 0, (size_t)strtoul(argv[1], NULL, 10));
	while ((st = line_read(&lr, &line, &len)) != LINE_EOF) {
		if (st == LINE_OK)
			printf("ok %llu %llu %zu%s\n", (unsigned long long)lr.lineno,
			       (unsigned long long)lr.offset, len, lr.missing_newline ? " nonl" : "");
		else if (st == LINE_CONTROL)
			printf("control %llu %llu %zu %zu%s\n", (unsigned long long)lr.lineno,
			       (unsigned long long)lr.offset, len, lr.control_at,
			       lr.missing_newline ? " nonl" : "");
		else if (st == LINE_TOO_LONG)
			printf("long %llu %llu %zu %zu\n", (unsigned long long)lr.lineno,
			       (unsigned long long)lr.offset, len, lr.prefix_len);
		else if (st == LINE_ERROR)
			return 74;
	}
	printf("eof\n");
	line_reader_release(&lr);
	return fshut(stdout, "standard output");
}
