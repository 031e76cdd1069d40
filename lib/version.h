/* version.h: the one version string that every kerf program prints. */
#ifndef KERF_VERSION_H
#define KERF_VERSION_H
#define KERF_VERSION "0.1.0"
#endif
