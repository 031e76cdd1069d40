/*
 * persist-klarf FILE...: read KLARF files with klarf_read and print each
 * defect as one line "WAFER XINDEX YINDEX XREL YREL XSIZE YSIZE AREA CLASS"
 * (numbers with 3 decimals), so tests can compare what kerf-persist wrote
 * with the events it was given.  Exit 65 with the reader's message when a
 * file does not read.
 */
#include "exitcode.h"
#include "log.h"
#include "cli.h"
#include "out.h"
#include "klarf.h"

#include <errno.h>
#include <string.h>

#include "banned.h"

int main(int argc, char **argv)
{
	log_init(argv[0]);
	for (int i = 1; i < argc; i++) {
		struct klarf k;
		char err[256];
		FILE *f = fopen(argv[i], "r");
		memset(&k, 0, sizeof k);
		if (!f)
			cli_die(KERF_EX_IOERR, "cannot open '%s': %s", argv[i], strerror(errno));
		if (klarf_read(f, argv[i], &k, err, sizeof err) != 0)
			cli_die(KERF_EX_DATAERR, "'%s': %s", argv[i], err);
		fclose(f);
		for (size_t w = 0; w < k.nwafers; w++) {
			const struct klarf_wafer *kw = &k.wafers[w];
			for (size_t d = 0; d < kw->ndefects; d++) {
				const struct klarf_defect *x = &kw->defects[d];
				printf("%s %ld %ld %.3f %.3f %.3f %.3f %.3f %ld\n", kw->wafer_id, x->xindex,
				       x->yindex, x->xrel, x->yrel, x->xsize, x->ysize, x->area, x->classnumber);
			}
		}
		klarf_free(&k);
	}
	return fshut(stdout, "standard output");
}
