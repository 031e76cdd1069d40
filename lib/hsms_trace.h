/*
 * hsms_trace.h: the --hsms-trace file of kerf-tool and kerf-acquire's
 * GEM host, one NDJSON record per HSMS frame sent or received, so that
 * an engineer can read a SECS/GEM session afterwards with jq:
 *
 *   {"t","dir","sf","w","sys","session","sml"}
 *
 * t is the wall clock (RFC 3339 UTC with microseconds), dir "in" or
 * "out", sf "S6F11" (a control message: its type, "select.req"), w the
 * W-bit, sys the system bytes, sml the data message as one line of SML
 * in which an item of more than SECS_SML_BRIEF_MAX elements (a die
 * image) shows only its format and length.  A body that is not SECS-II
 * has "error" instead of "sml"; Select.rsp and Deselect.rsp add
 * "status", Reject.req "reason".
 *
 * Steps: hsms_trace_open; hsms_trace_frame from the connection's
 * on_trace callback; hsms_trace_close.
 */
#ifndef KERF_HSMS_TRACE_H
#define KERF_HSMS_TRACE_H

#include "hsms.h"

struct hsms_trace;

/* Create (truncate) path, never through a symbolic link: NULL with errno. */
struct hsms_trace *hsms_trace_open(const char *path);
/* One record, written at once; a write error is logged once and ends the tracing. */
void hsms_trace_frame(struct hsms_trace *t, enum hsms_dir dir, const struct hsms_msg *m);
/* Close: 0, or -1 when a record could not be written (logged).  Safe on NULL. */
int hsms_trace_close(struct hsms_trace *t);

#endif
