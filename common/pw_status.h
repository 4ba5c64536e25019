/* Status codes shared by every module: the loop decides retry vs give-up on them. */
#ifndef PW_STATUS_H
#define PW_STATUS_H

#define PW_MUST_CHECK __attribute__((warn_unused_result))

typedef enum pw_status {
	PW_OK = 0,
	PW_E_INVALID,  /**< permanent: the input is wrong, retrying cannot help */
	PW_E_AUTH,     /**< permanent: the token is refused (401) */
	PW_E_RETRY,    /**< transient: a service (database, broker) is down; try again later */
	PW_E_INTERNAL, /**< permanent failure of ours (a bug, a constraint we did not expect) */
	PW_E_NOMEM,    /**< allocation failed */
	PW_E_CONFIG,   /**< bad configuration: exit 2 */
} pw_status;

#endif
