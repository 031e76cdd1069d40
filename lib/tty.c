/* tty.c: see tty.h. */
#include "util.h"
#include "log.h"
#include "sig.h"
#include "event.h"
#include "tty.h"
#include "status_doc.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "banned.h"

struct tty {
	SCREEN *scr;
	FILE *in;
	int open;
	int colour;
	unsigned long frames;
};

enum { C_OK = 1, C_WARN, C_BAD, C_HEAD, C_DIM, C_TITLE };

static struct tty *live; /* the open dashboard, for the atexit hook */
static volatile sig_atomic_t winched;

static void on_winch(int signo)
{
	(void)signo;
	winched = 1;
}

static void on_hup(int signo)
{
	sig_stop = signo;
}

static void restore_at_exit(void)
{
	tty_close(live);
}

/* restore_at_exit is registered once, whichever dashboard opens first. */
static pthread_once_t exit_hook = PTHREAD_ONCE_INIT;

static void hook_exit(void)
{
	atexit(restore_at_exit);
}

struct tty *tty_open(void)
{
	struct tty *t;
	struct sigaction sa;
	const char *term = getenv("TERM");
	int fd;

	if (!term || !*term || !strcmp(term, "dumb")) {
		log_msg(LOG_WARN, NULL, "no dashboard: TERM is not set to a usable terminal");
		return NULL;
	}
	t = xcalloc(1, sizeof *t);
	/* The keyboard is not read, but newterm wants an input stream; never stdin,
	 * which carries the events. */
	fd = open("/dev/tty", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	t->in = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!t->in) {
		log_msg(LOG_WARN, NULL, "no dashboard: cannot open an input stream: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		free(t);
		return NULL;
	}
	/* Our own SIGWINCH handler: ncurses only resizes from getch(), which we never call. */
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);

	t->scr = newterm(NULL, stdout, t->in);
	if (!t->scr) {
		log_msg(LOG_WARN, NULL, "no dashboard: terminal '%s' is not known", term);
		fclose(t->in);
		free(t);
		return NULL;
	}
	t->open = 1;
	live = t;
	pthread_once(&exit_hook, hook_exit);
	noecho();
	cbreak();
	curs_set(0);
	leaveok(stdscr, TRUE);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(C_OK, COLOR_GREEN, -1);
		init_pair(C_WARN, COLOR_YELLOW, -1);
		init_pair(C_BAD, COLOR_RED, -1);
		init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
		init_pair(C_DIM, COLOR_BLUE, -1);
		init_pair(C_TITLE, COLOR_CYAN, -1);
		t->colour = 1;
	}
	return t;
}

void tty_close(struct tty *t)
{
	if (!t || !t->open)
		return;
	t->open = 0;
	curs_set(1);
	endwin();
	fflush(stdout);
	delscreen(t->scr);
	fclose(t->in);
	if (live == t)
		live = NULL;
	free(t);
}

/* ---- drawing helpers ---- */

static int W, H;

static void put(int y, int x, attr_t a, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(int y, int x, attr_t a, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	if (y < 0 || y >= H || x >= W)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	attron(a);
	mvaddnstr(y, x, buf, W - x);
	attroff(a);
}

static void bar(int y, int x, int width, double frac, attr_t a)
{
	int n;
	if (width < 3 || y >= H || x + width > W)
		return;
	if (!(frac >= 0))
		frac = 0;
	if (frac > 1)
		frac = 1;
	n = (int)lround(frac * (width - 2));
	mvaddch(y, x, '[');
	attron(a);
	for (int i = 0; i < width - 2; i++)
		addch(i < n ? '#' : '-');
	attroff(a);
	addch(']');
}

static attr_t colour(const struct tty *t, int pair)
{
	return t->colour ? COLOR_PAIR(pair) : 0;
}

static int state_pair(const char *s)
{
	if (!s)
		return C_DIM;
	if (!strcmp(s, "running") || !strcmp(s, "completed") || !strcmp(s, "executing") ||
	    !strcmp(s, "done") || !strcmp(s, "exited"))
		return C_OK;
	if (!strcmp(s, "failed") || !strcmp(s, "timed-out") || !strcmp(s, "killed") ||
	    !strcmp(s, "cancelled") || !strcmp(s, "aborted"))
		return C_BAD;
	return C_WARN;
}

static void human(double v, char *out, size_t n)
{
	if (v >= 1e9)
		snprintf(out, n, "%.1fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, n, "%.1fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(out, n, "%.1fk", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

/* Seconds the run has lasted: status.json's figure, else since we started. */
static double elapsed_s(const struct project *p)
{
	static const char *const secs[] = { "elapsed_s", "elapsed", NULL };
	static const char *const ms[] = { STATUS_ELAPSED_MS, NULL };
	static const char *const starts[] = { STATUS_STARTED, "start", "started_at", "t_start", NULL };
	double v;
	if (p->status) {
		if (project_stage_num(p->status, secs, &v))
			return v;
		if (project_stage_num(p->status, ms, &v))
			return v / 1000;
		for (size_t i = 0; starts[i]; i++) {
			const char *s = json_string_value(json_object_get(p->status, starts[i]));
			struct timespec ts, now;
			if (s && event_time_parse(s, &ts) == 0) {
				real_now(&now);
				return (double)(now.tv_sec - ts.tv_sec) + (double)(now.tv_nsec - ts.tv_nsec) / 1e9;
			}
		}
	}
	return (double)(mono_ms() - p->start_ms) / 1000;
}

/* The tool link's state (kerf-acquire(1) over HSMS) as status.json's
 * stages hold it: "online", "lost t6"; NULL without one. */
static const char *link_state(const struct project *p, char *out, size_t n)
{
	struct status_stage s;
	for (size_t i = 0; status_doc_stage(p->status, i, &s); i++) {
		if (s.link_state) {
			snprintf(out, n, "%s%s%s", s.link_state, s.link_cause ? " " : "", s.link_cause ? s.link_cause : "");
			return out;
		}
	}
	return NULL;
}

/* ---- sections ---- */

static int draw_stages(struct tty *t, const struct project *p, int y, int w)
{
	/* The stage's own account of its work (kerf-events(5), Stats records). */
	static const char *const work_keys[] = { "work", NULL };
	static const char *const rate_keys[] = { "per_s", NULL };
	json_t *stages = json_object_get(p->status, STATUS_STAGES), *st;
	size_t i;
	int with_pid, xs, xq;

	put(y++, 0, A_BOLD | colour(t, C_TITLE), "STAGES");
	if (!p->status) {
		put(y++, 2, colour(t, C_DIM), "no status.json: run state and stages unknown");
		return y + 1;
	}
	if (!json_is_array(stages) || json_array_size(stages) == 0) {
		put(y++, 2, colour(t, C_DIM), "no stages in status.json");
		return y + 1;
	}
	/* Columns: name, pid (when there is room), state, work per second,
	 * work done and its unit, queue. */
	with_pid = w >= 62;
	xs = with_pid ? 21 : 13;
	xq = xs + 33;
	if (with_pid)
		put(y++, 2, A_DIM, "%-10s %7s %-8s %7s %7s %-6s  %s", "stage", "pid", "state", "per s", "work", "",
		    "queue");
	else
		put(y++, 2, A_DIM, "%-10s %-8s %7s %7s %-6s  %s", "stage", "state", "per s", "work", "", "queue");
	json_array_foreach(stages, i, st) {
		const char *name = json_string_value(json_object_get(st, STATUS_STAGE_NAME));
		const char *state = json_string_value(json_object_get(st, STATUS_STAGE_STATE));
		const char *shown;
		const char *unit = json_string_value(json_object_get(json_object_get(st, STATUS_STAGE_COUNTERS), "unit"));
		json_t *pid = json_object_get(st, STATUS_STAGE_PID);
		double work = 0, rate = 0, used, cap;
		char sp[16], swork[16], srate[16];
		if (y >= H - 2)
			break;
		shown = name ? name : "?";
		if (!strncmp(shown, "kerf-", 5) && shown[5])
			shown += 5; /* every stage is kerf's: say which */
		if (json_is_integer(pid))
			snprintf(sp, sizeof sp, "%lld", (long long)json_integer_value(pid));
		else
			snprintf(sp, sizeof sp, "-");
		if (project_stage_num(st, rate_keys, &rate))
			human(rate, srate, sizeof srate);
		else
			snprintf(srate, sizeof srate, "-");
		if (project_stage_num(st, work_keys, &work))
			human(work, swork, sizeof swork);
		else
			snprintf(swork, sizeof swork, "-");
		if (with_pid)
			put(y, 2, 0, "%-10.10s %7s ", shown, sp);
		else
			put(y, 2, 0, "%-10.10s ", shown);
		put(y, xs, colour(t, state_pair(state)), "%-8.8s", state ? state : "-");
		put(y, xs + 9, 0, "%7s %7s %-6.6s  ", srate, swork, unit ? unit : "");
		if (project_stage_queue(st, &used, &cap)) {
			if (cap > 0 && w - xq >= 8) {
				int bw = w - xq - 6 < 22 ? w - xq - 6 : 22;
				double fr = used / cap;
				bar(y, xq, bw, fr, colour(t, fr > 0.75 ? C_BAD : fr > 0.25 ? C_WARN : C_OK));
				put(y, xq + bw + 1, 0, "%3.0f%%", fr * 100);
			} else {
				char sb[16];
				human(used, sb, sizeof sb);
				put(y, xq, 0, "%sB", sb);
			}
		}
		y++;
	}
	return y + 1;
}

static int draw_defects(struct tty *t, const struct project *p, int y, int w)
{
	uint64_t max = 1;
	int shown = 0;
	put(y, 0, A_BOLD | colour(t, C_TITLE), "DEFECTS");
	put(y++, 9, 0, "%llu total, %.0f/s", (unsigned long long)p->defects, p->rate_defects);
	for (size_t i = 0; i <= PROJECT_CLASSES; i++)
		if (p->classes[i].count > max)
			max = p->classes[i].count;
	for (size_t i = 0; i <= PROJECT_CLASSES && y < H - 2; i++) {
		if (i == p->nclasses)
			i = PROJECT_CLASSES;
		if (!p->classes[i].count)
			continue;
		put(y, 2, 0, "%-16.16s %8llu ", project_class_name(p, i),
		    (unsigned long long)p->classes[i].count);
		if (w - 29 > 5)
			bar(y, 28, w - 29 < 28 ? w - 29 : 28, (double)p->classes[i].count / (double)max,
			    colour(t, C_WARN));
		y++;
		if (++shown == 8)
			break;
	}
	if (!shown)
		put(y++, 2, A_DIM, "none yet");
	return y + 1;
}

static int draw_alarms(struct tty *t, const struct project *p, int y)
{
	uint64_t first = p->nalarms > 4 ? p->nalarms - 4 : 0;
	put(y, 0, A_BOLD | colour(t, C_TITLE), "ALARMS");
	put(y++, 8, 0, "%llu total", (unsigned long long)p->nalarms);
	if (!p->nalarms)
		put(y++, 2, A_DIM, "none");
	for (uint64_t k = p->nalarms; k-- > first && y < H - 1;) {
		const struct project_alarm *a = &p->alarms[k % PROJECT_ALARMS];
		const char *tm = a->t && strlen(a->t) >= 19 ? a->t + 11 : "";
		attr_t at = colour(t, a->critical ? C_BAD : a->set ? C_WARN : C_OK);
		put(y++, 2, at, "%.8s %-6.6s %-5s %-14.14s %s", tm, a->alid ? a->alid : "-",
		    a->set ? "SET" : "clear", a->category ? a->category : "-", a->text ? a->text : "");
	}
	return y + 1;
}

/*
 * The current wafer's die grid, fitted to w x h cells: each die is two
 * characters wide (terminal cells are about twice as tall as wide), and
 * when the grid is larger than the space, b x b dies share a cell.
 */
static void draw_map(struct tty *t, const struct project *p, int y0, int x0, int w, int h)
{
	struct project_geom g;
	const struct project_wafer *wf;
	long b = 1, mc, mr;

	if (w < 12 || h < 5)
		return;
	if (p->cur < 0) {
		put(y0, x0, A_BOLD | colour(t, C_TITLE), "WAFER MAP");
		put(y0 + 1, x0 + 2, A_DIM, "no wafer yet");
		return;
	}
	wf = &p->wafers[p->cur];
	put(y0, x0, A_BOLD | colour(t, C_TITLE), "WAFER %s", wf->id);
	put(y0 + 1, x0 + 2, 0, "%zu dies%s, %llu defects on %zu dies",
	    wf->acct.inspected, wf->acct.ended ? " (ended)" : "", (unsigned long long)wf->acct.defects, wf->acct.defective);
	if (wf->finished) {
		/* Its details were freed when it finished: only its numbers are left. */
		put(y0 + 2, x0 + 2, A_DIM, "finished: map in wafermap/%s", wf->file);
		put(y0 + 3, x0 + 2, A_DIM, "%llu late event%s since, not on the map",
		    (unsigned long long)wf->acct.late, wf->acct.late == 1 ? "" : "s");
		return;
	}
	y0 += 2;
	h -= 3;
	project_geom_for(p, &g);
	if (h < 1)
		return;
	b = (2 * g.cols + w - 1) / w;
	if ((g.rows + h - 1) / h > b)
		b = (g.rows + h - 1) / h;
	if (b < 1)
		b = 1;
	while ((g.cols + b - 1) / b * 2 > w || (g.rows + b - 1) / b > h)
		b++;
	mc = (g.cols + b - 1) / b;
	mr = (g.rows + b - 1) / b;
	x0 += (int)((w - mc * 2) / 2);
	/* Bin the dies seen into cells (cost: dies seen, not dies on the grid);
	 * a cell is on the wafer when the die at its middle is. */
	{
		struct cell { long defects; int insp; } *cells = xcalloc((size_t)(mc * mr), sizeof *cells);
		for (size_t i = 0; i < wf->acct.dcap; i++) {
			const struct wafer_die *d = &wf->acct.dies[i];
			struct cell *cl;
			if (!d->used || d->col >= g.cols || d->row >= g.rows)
				continue;
			cl = &cells[(d->row / b) * mc + d->col / b];
			cl->defects += d->defects;
			cl->insp |= d->inspected | (d->defects > 0);
		}
		for (long cr = 0; cr < mr; cr++) {
			/* Row 0 is at the bottom: the map is drawn y up, like the wafer. */
			long rr = mr - 1 - cr;
			move(y0 + (int)cr, x0);
			for (long cc = 0; cc < mc; cc++) {
				const struct cell *cl = &cells[rr * mc + cc];
				long mcol = cc * b + b / 2, mrow = rr * b + b / 2;
				char cell[3] = "  ";
				attr_t a = 0;
				if (mcol >= g.cols)
					mcol = g.cols - 1;
				if (mrow >= g.rows)
					mrow = g.rows - 1;
				if (cl->defects > 0) {
					/* One digit, so that neighbours never read as one number. */
					if (cl->defects < 10)
						cell[0] = (char)('0' + cl->defects);
					else
						cell[0] = '#';
					a = A_BOLD | colour(t, cl->defects >= 5 ? C_BAD : C_WARN);
				} else if (cl->insp) {
					cell[0] = 'o';
					a = colour(t, C_OK);
				} else if (project_die_on_wafer(&g, mcol, mrow)) {
					cell[0] = '.';
					a = colour(t, C_DIM);
				}
				attron(a);
				addnstr(cell, 2);
				attroff(a);
			}
		}
		free(cells);
	}
	if (b > 1)
		put(y0 + (int)mr, x0, A_DIM, "%ldx%ld dies per cell", b, b);
}

void tty_draw(struct tty *t, const struct project *p, unsigned interval_ms)
{
	const char *run = project_run_id(p), *state = project_run_state(p);
	double el = elapsed_s(p);
	long es = el > 0 ? (long)el : 0;
	int left, y;

	if (!t || !t->open)
		return;
	if (winched) {
		struct winsize ws;
		winched = 0;
		if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
			resizeterm(ws.ws_row, ws.ws_col);
	}
	W = COLS;
	H = LINES;
	/* Repaint everything now and then: anything else written to this
	 * terminal (another program's messages) is gone within seconds. */
	if (interval_ms && t->frames % (5000 / interval_ms) == 0)
		clearok(curscr, TRUE);
	erase();

	/* Header: the run, its state (the supervisor's word) and time. */
	attron(colour(t, C_HEAD) | A_BOLD);
	mvhline(0, 0, ' ', W);
	attroff(colour(t, C_HEAD) | A_BOLD);
	put(0, 1, colour(t, C_HEAD) | A_BOLD, "kerf  run %s  state %s  elapsed %02ld:%02ld:%02ld",
	    run ? run : "?", state ? state : "unknown", es / 3600, es / 60 % 60, es % 60);
	if (p->tool_state && W > 70)
		put(0, W - 22, colour(t, C_HEAD), "tool %-15.15s", p->tool_state);

	/* Progress. */
	y = 1;
	{
		long planned = p->wafers_planned;
		int bw = 26;
		char ls[48];
		const char *link = link_state(p, ls, sizeof ls);
		put(y, 1, 0, "lot %s  recipe %s", p->lot ? p->lot : "-", p->recipe ? p->recipe : "-");
		if (link && W > 70)
			put(y, W - 22, colour(t, state_pair(!strcmp(link, "online") ? "running" :
							   !strncmp(link, "lost", 4) ? "failed" : NULL)),
			    "link %-16.16s", link);
		y++;
		if (planned > 0) {
			double fr = (double)p->wafers_ended / (double)planned;
			put(y, 1, 0, "wafers %3llu/%-3ld", (unsigned long long)p->wafers_ended, planned);
			bar(y, 17, bw, fr, colour(t, C_OK));
			put(y, 17 + bw + 1, 0, "%3.0f%%", fr * 100);
		} else {
			put(y, 1, 0, "wafers %llu done of %zu seen", (unsigned long long)p->wafers_ended,
			    p->nwafers);
		}
		if (p->cur >= 0) {
			const struct project_wafer *wf = &p->wafers[p->cur];
			int x = 17 + bw + 7;
			if (wf->acct.planned_dies > 0 && W - x > 30) {
				double fr = (double)wf->acct.inspected / (double)wf->acct.planned_dies;
				put(y, x, 0, "%s %zu/%ld", wf->id, wf->acct.inspected, wf->acct.planned_dies);
				bar(y, x + (int)strlen(wf->id) + 14, 16, fr, colour(t, C_OK));
			} else {
				put(y, x, 0, "current %s, %zu dies", wf->id, wf->acct.inspected);
			}
		}
		y += 2;
	}

	/* Side by side when wide: the map gets two columns per die if the
	 * left pane can give them and keep 52 columns. */
	{
		struct project_geom g;
		project_geom_for(p, &g);
		left = W;
		if (W >= 110) {
			long want = W - (2 * g.cols + 2);
			left = want > 66 ? 66 : want < 52 ? 52 : (int)want;
		}
	}
	{
		int ys = y;
		y = draw_stages(t, p, y, left);
		y = draw_defects(t, p, y, left);
		y = draw_alarms(t, p, y);
		if (left < W)
			draw_map(t, p, ys, left + 1, W - left - 1, H - ys - 1);
		else if (H - y - 1 >= 8)
			draw_map(t, p, y, 0, W, H - y - 1);
	}

	/* Footer. */
	t->frames++;
	put(H - 1, 0, A_DIM, "events %llu (%.0f/s)  dies %llu  defects %llu  redraw %u ms  frame %lu%s",
	    (unsigned long long)p->events, p->rate_events, (unsigned long long)p->dies_done,
	    (unsigned long long)p->defects, interval_ms, t->frames,
	    p->end_status ? "  end of stream" : "");
	refresh();
}
