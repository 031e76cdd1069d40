/*
 * banned.h: functions that invite overflows or silent truncation.
 * Every .c file of kerf includes it after all its other headers; use
 * snprintf, memcpy with a checked length, or the helpers in util.h.
 */
#ifndef KERF_BANNED_H
#define KERF_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_kerf

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)

#endif
