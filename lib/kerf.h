/*
 * kerf.h: the core of libkerf that every program includes: exit codes,
 * version, utilities, logging, stats, signals, the line reader and the
 * event envelope.  Modules with a narrower audience (klarf, image, ...)
 * are included on their own.
 */
#ifndef KERF_H
#define KERF_H

#include <jansson.h>

#include "exitcode.h"
#include "version.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "line.h"
#include "event.h"
#include "cli.h"

#include "banned.h"

#endif
