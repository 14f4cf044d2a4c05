/* Replicas on another host: the system's OpenSSH sftp in batch mode (sftp -b -), so the far side
 * needs nothing but sshd's sftp subsystem: no Slate, no shell. Authentication is ssh's (keys,
 * known_hosts, BatchMode: never a prompt); an optional ssh_config file (-F) says how to reach it.
 * Each call is one connection. Paths are quoted for sftp's batch parser. */
#pragma once
#include <stddef.h>

typedef struct Sftp {
        const char *program;    /* sftp */
        const char *config;     /* passed as -F when set */
        char *host;             /* [user@]host */
        char *path;             /* the directory on it */
} Sftp;

/* "[user@]host:/path" (an absolute path after the first ':'; no ':' before it in the host part
 * but an IPv6 literal in [...]): 1 and *ret filled (free with sftp_free), 0 when dest is a local
 * path, -EINVAL when it is neither. */
int sftp_parse(const char *dest, const char *program, const char *config, Sftp *ret);
void sftp_free(Sftp *s);

/* Runs the batch (one command a line; a leading '-' makes a failure non-fatal). *ret_out (optional):
 * what it printed, each command's output after sftp's echo of it ("sftp> ...", at most 8 MiB).
 * -EIO with *ret_error (sftp's last words) when sftp failed. */
int sftp_batch(const Sftp *s, const char *batch, char **ret_out, char **ret_error);

/* A path quoted for a batch line: "..." with " and \ escaped (free it). */
char *sftp_quote(const char *path);

/* The names the section-th command of a batch (from 0) printed, as ls -1 does for a directory
 * (the last path component of each line). */
char **sftp_names(const char *out, unsigned section, size_t *ret_n);
