/*
 * bench-jansson: the library's own limit, for scripts/bench to compare
 * stages against. Reads NDJSON on stdin with getline and parses each line
 * with json_loadb (as kerf-validate does), then throws it away.
 * Prints "LINES BYTES" on stdout.  With -w it also writes each line back
 * out (json_dumpb), the cost of a stage that re-serializes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char *line = NULL, *out = NULL;
	size_t cap = 0, outcap = 0;
	ssize_t n;
	unsigned long long lines = 0, bytes = 0, bad = 0;
	int dump = argc > 1 && !strcmp(argv[1], "-w");

	while ((n = getline(&line, &cap, stdin)) > 0) {
		json_error_t err;
		json_t *j = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &err);
		lines++;
		bytes += (unsigned long long)n;
		if (!j) {
			bad++;
			continue;
		}
		if (dump) {
			size_t need = json_dumpb(j, NULL, 0, JSON_COMPACT);
			if (need > outcap)
				out = realloc(out, outcap = need * 2);
			if (out)
				json_dumpb(j, out, need, JSON_COMPACT);
		}
		json_decref(j);
	}
	free(line);
	free(out);
	printf("%llu %llu %llu\n", lines, bytes, bad);
	return fclose(stdout) != 0;
}
