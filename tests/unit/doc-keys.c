/*
 * doc-keys: print every member that lib/status_doc.h names for
 * status.json, one "status.json WHERE KEY" a line (WHERE "-" for the
 * document itself), then every member of a results.ndjson record
 * (lib/reprocess.h), one "results.ndjson - KEY" a line, for
 * tests/man.bats to check the man pages against.
 */
#include "out.h"
#include "reprocess.h"
#include "status_doc.h"

#include "banned.h"

int main(void)
{
	const char *k;
	for (const struct status_doc_key *d = status_doc_keys; d->key; d++)
		printf("status.json %s %s\n", d->where[0] ? d->where : "-", d->key);
	for (size_t i = 0; (k = rp_result_key(i)); i++)
		printf("results.ndjson - %s\n", k);
	return fshut(stdout, "standard output");
}
