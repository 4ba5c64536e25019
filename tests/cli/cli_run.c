/* Child processes for the command-line tests; see cli_run.h. */
#include "cli_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#define OUT_MAX (1024 * 1024)

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void set_cloexec(int fd)
{
	ck_assert(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	if (*len + n > OUT_MAX)
		n = OUT_MAX - *len;
	char *nb = realloc(*buf, *len + n + 1);
	ck_assert(nb != NULL);
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

void cli_run(const char *bin, const char *const *args, char *const *envp, long deadline_ms,
             cli_result *r)
{
	cli_run_stdin(bin, args, envp, deadline_ms, "/dev/null", r);
}

void cli_run_stdin(const char *bin, const char *const *args, char *const *envp, long deadline_ms,
                   const char *stdin_path, cli_result *r)
{
	char *argv[CLI_MAX_ARGS + 2];
	int op[2], ep[2];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	size_t argc = 0;
	struct timespec t0;

	memset(r, 0, sizeof(*r));
	append(&r->out, &r->out_len, "", 0);
	append(&r->err, &r->err_len, "", 0);
	argv[argc++] = (char *)bin;
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert(argc < CLI_MAX_ARGS + 1);
		argv[argc++] = (char *)args[i];
	}
	argv[argc] = NULL;

	ck_assert(pipe(op) == 0 && pipe(ep) == 0);
	for (int i = 0; i < 2; i++) {
		set_cloexec(op[i]);
		set_cloexec(ep[i]);
	}
	ck_assert(posix_spawn_file_actions_init(&fa) == 0);
	ck_assert(posix_spawn_file_actions_addopen(&fa, 0, stdin_path, O_RDONLY, 0) == 0);
	ck_assert(posix_spawn_file_actions_adddup2(&fa, op[1], 1) == 0);
	ck_assert(posix_spawn_file_actions_adddup2(&fa, ep[1], 2) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(op[1]);
	close(ep[1]);
	ck_assert_msg(rc == 0, "cannot run %s: %s", bin, strerror(rc));

	struct pollfd pf[2] = {{.fd = op[0], .events = POLLIN}, {.fd = ep[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds > 0) {
		long left = deadline_ms - elapsed_ms(&t0);
		if (left <= 0)
			break;
		int n = poll(pf, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert(n >= 0);
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			char chunk[4096];
			ssize_t got = read(pf[i].fd, chunk, sizeof(chunk));
			if (got > 0) {
				if (i == 0)
					append(&r->out, &r->out_len, chunk, (size_t)got);
				else
					append(&r->err, &r->err_len, chunk, (size_t)got);
			} else if (got == 0 || errno != EINTR) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (;;) {
		pid_t w = waitpid(pid, &r->status, WNOHANG);
		if (w == pid)
			break;
		ck_assert(w == 0 || errno == EINTR);
		if (elapsed_ms(&t0) >= deadline_ms) {
			r->timed_out = 1;
			kill(pid, SIGKILL);
			while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	r->ms = elapsed_ms(&t0);
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
}

void cli_result_free(cli_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

int cli_exit_code(const cli_result *r)
{
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

int cli_has_line(const char *text, const char *prefix)
{
	const char *p = text;

	while (*p) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return 1;
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	return 0;
}
