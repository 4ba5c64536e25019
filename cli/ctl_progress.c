/* Progress on stderr; see ctl_progress.h. */
#include "ctl_progress.h"

#include <string.h>
#include <unistd.h>

#define TTY_EVERY_MS   200
#define PLAIN_EVERY_MS 5000
#define BAR            24

unsigned long ctl_progress_done(const ctl_progress_counts *c)
{
	return c->created + c->updated + c->deleted;
}

unsigned long ctl_progress_failed(const ctl_progress_counts *c)
{
	return c->rejected + c->unparsable + c->too_large + c->timeout + c->unsent;
}

void ctl_progress_init(ctl_progress *p, FILE *out, int64_t now_ms)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->tty = isatty(fileno(out)) == 1;
	p->start_ms = now_ms;
	p->next_ms = now_ms + (p->tty ? TTY_EVERY_MS : PLAIN_EVERY_MS);
}

/* "12s", "3m04s", "1h02m"; "?" before there is anything to go by. */
static void fmt_eta(char *buf, size_t size, double elapsed_s, double fraction)
{
	if (fraction >= 1.0) {
		snprintf(buf, size, "0s");
		return;
	}
	if (fraction <= 0.001 || elapsed_s < 0.5) {
		snprintf(buf, size, "?");
		return;
	}
	long s = (long)(elapsed_s * (1 - fraction) / fraction + 0.5);
	if (s < 60)
		snprintf(buf, size, "%lds", s);
	else if (s < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
}

void ctl_progress_tick(ctl_progress *p, const ctl_progress_counts *c, double fraction,
                       int64_t now_ms, bool force)
{
	char eta[32], bar[BAR + 1];
	double elapsed = (double)(now_ms - p->start_ms) / 1000.0;
	unsigned long answered = ctl_progress_done(c) + c->rejected;
	double rate = elapsed > 0 ? (double)answered / elapsed : 0;

	if (!force && now_ms < p->next_ms)
		return;
	p->next_ms = now_ms + (p->tty ? TTY_EVERY_MS : PLAIN_EVERY_MS);
	fmt_eta(eta, sizeof(eta), elapsed, fraction);
	if (p->tty) {
		int full = (int)(fraction * BAR + 0.5);
		for (int i = 0; i < BAR; i++)
			bar[i] = i < full ? '#' : '.';
		bar[BAR] = '\0';
		/* \r and erase-to-end redraw the one line; nothing scrolls. */
		fprintf(p->out,
		        "\r[%s] %3d%%  sent %lu  answered %lu  failed %lu  skipped %lu  %.0f/s  "
		        "ETA %s\033[K",
		        bar, (int)(fraction * 100), c->sent, answered, ctl_progress_failed(c),
		        c->skipped, rate, eta);
		p->drawn = true;
	} else {
		fprintf(p->out,
		        "patientctl load: %d%% of the file, %lu rows sent, %lu answered, %lu "
		        "failed, %lu skipped, %.0f rows/s, ETA %s\n",
		        (int)(fraction * 100), c->sent, answered, ctl_progress_failed(c),
		        c->skipped, rate, eta);
	}
	fflush(p->out);
}

void ctl_progress_end(ctl_progress *p)
{
	if (p->tty && p->drawn) {
		fputc('\n', p->out);
		fflush(p->out);
	}
	p->drawn = false;
}
