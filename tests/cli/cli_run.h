/* Runs a built binary as a child process with an exact environment and a deadline, and
 * collects its exit status, stdout and stderr: the command-line tests' one way to run
 * patient-worker and patientctl. */
#ifndef CLI_RUN_H
#define CLI_RUN_H

#include <stddef.h>

/* Arguments after the binary, at most. */
#define CLI_MAX_ARGS 24

typedef struct cli_result {
	int timed_out;
	int status; /**< from waitpid */
	char *out;  /**< NUL-terminated, at most 1 MiB kept */
	char *err;
	size_t out_len, err_len;
	long ms; /**< how long it ran */
} cli_result;

/* Runs bin with args (NULL-terminated) in exactly envp, stdin from /dev/null; waits at
 * most deadline_ms, then kills it and sets timed_out. Fails the test when it cannot. */
void cli_run(const char *bin, const char *const *args, char *const *envp, long deadline_ms,
             cli_result *r);

/* The same with stdin read from stdin_path. */
void cli_run_stdin(const char *bin, const char *const *args, char *const *envp, long deadline_ms,
                   const char *stdin_path, cli_result *r);

void cli_result_free(cli_result *r);

/* The exit status, or -1 when the child did not exit normally. */
int cli_exit_code(const cli_result *r);

/* Does some line of text start with prefix? */
int cli_has_line(const char *text, const char *prefix);

#endif
