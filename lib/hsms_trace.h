/*
 * hsms_trace.h: the --hsms-trace file, one NDJSON record per HSMS frame
 * sent or received, so that an engineer can read a SECS/GEM session
 * afterwards with jq:
 *
 *   {"t","dir","sf","w","sys","session","sml"}          a data message
 *   {"t","dir","ctl","sys","session","sf"[,"status"]}   a control message
 *
 * t is the wall clock (RFC 3339 UTC with microseconds), dir "in" or
 * "out", sys the system bytes, sf "S6F11" or, for a control message, its
 * SType's name as ctl, sml the message as one line of SML in which a
 * binary item longer than 16 bytes (a die image) shows its length and
 * first bytes only, and any other item of more than 64 elements its
 * count (secs.h's SECS_SML_BRIEF).  A body that is not SECS-II gets
 * "sml":null and "error".
 *
 * Steps: hsms_trace_open; hsms_trace_frame from the connection's
 * on_trace callback; hsms_trace_close.
 */
#ifndef KERF_HSMS_TRACE_H
#define KERF_HSMS_TRACE_H

#include "hsms.h"

struct hsms_trace;

/* NULL with errno when path cannot be opened for writing. */
struct hsms_trace *hsms_trace_open(const char *path);
/* One record; a write error is logged once and ends the tracing. */
void hsms_trace_frame(struct hsms_trace *t, enum hsms_dir dir, const struct hsms_msg *m);
/* Close: 0, or -1 when a record could not be written (logged).  Safe on NULL. */
int hsms_trace_close(struct hsms_trace *t);

#endif
