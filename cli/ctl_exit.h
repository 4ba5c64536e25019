/* patientctl's exit statuses, the same for every command (see --help). Functions that
 * decide how the process ends return one of these. */
#ifndef CTL_EXIT_H
#define CTL_EXIT_H

typedef enum ctl_exit {
	CTL_EXIT_OK = 0,          /**< 2xx, or every row of a load fine */
	CTL_EXIT_FAILED = 1,      /**< 4xx/5xx, or some row of a load failed */
	CTL_EXIT_USAGE = 2,       /**< bad option, setting or input file: one line names it */
	CTL_EXIT_TIMEOUT = 3,     /**< no reply in time (or the broker did not answer) */
	CTL_EXIT_INTERRUPT = 130, /**< SIGINT or SIGTERM (load) */
} ctl_exit;

#endif
