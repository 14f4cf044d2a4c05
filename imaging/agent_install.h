/* Publish step "agent": install (or update) the static slate-agent in the staged image and the
 * service that starts it at boot. Internal to imaging/. */
#pragma once
#include <json-c/json.h>
#include "imaging/gfs.h"

#define AGENT_GUEST_PATH "/usr/libexec/slate/slate-agent"
#define AGENT_GUEST_SESSION "/usr/libexec/slate/session"

/* init: systemd | busybox | sysv (inspect). session_script may be NULL or missing (skipped).
 * *ret_report: {"action": "installed"|"updated", "service": "systemd"|"sysv", "session_script": bool}. */
int agent_install(guestfs_h *g, const char *init, const char *agent_binary, const char *session_script,
                  json_object **ret_report, char **ret_error);
