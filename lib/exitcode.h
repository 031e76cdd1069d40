/*
 * exitcode.h: the one table of exit codes for every kerf program.
 * Every man page's EXIT STATUS section repeats this table; change both.
 * The stage codes follow sysexits(3); the run outcomes are kerf run's own.
 */
#ifndef KERF_EXITCODE_H
#define KERF_EXITCODE_H

enum kerf_exit {
	KERF_EX_OK = 0,            /* success; kerf run: the run completed */
	KERF_EX_FAILED = 1,        /* kerf run: a critical stage failed */
	KERF_EX_ALARM = 3,         /* a critical alarm aborted the run */
	KERF_EX_USAGE = 64,        /* bad command line */
	KERF_EX_DATAERR = 65,      /* bad input data (strict modes) */
	KERF_EX_UNAVAILABLE = 69,  /* machine unavailable or not ready */
	KERF_EX_SOFTWARE = 70,     /* internal error */
	KERF_EX_IOERR = 74,        /* I/O error, including a closed stdout */
	KERF_EX_TEMPFAIL = 75,     /* stopped before end of input; rerun; kerf pause,
	                            * resume, stop --wait: the command was refused
	                            * or superseded, nothing changed; retry */
	KERF_EX_TIMEOUT = 124,     /* kerf run: a timeout ended the run; kerf pause,
	                            * resume, stop --wait: the command timed out,
	                            * or no outcome within --timeout */
	KERF_EX_CANCELLED = 130,   /* kerf run: the operator cancelled the run */
};

#endif
