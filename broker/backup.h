/* Profile backups to the block store (streaming/store.h, docs/design.md "Block store"): after
 * every logout the user's profile disk becomes a new version, reading only the blocks its dirty
 * bitmap names since the last committed version (all of them when the bitmap is missing or
 * untrusted, logged as such); the bitmap is cleared only once the version is committed. One
 * backup at a time per user; a logon of that user waits for it (the disk is open meanwhile). */
#pragma once
#include <stdbool.h>
#include "broker/broker.h"

struct Store;
struct ControlRequest;

/* The block store, for one job at a time (store_mu held until store_release): opened with the
 * host key on first use (created only when create is set) and kept open, so a backup of a small
 * change costs what it reads, not the reading of every pack index. From the thread pool. */
int store_acquire(Broker *b, const char *dir, const uint8_t host[32], bool create, struct Store **ret,
                  char **ret_error);
void store_release_handle(Broker *b);
/* At exit, or after the store was changed behind slated's back. */
void store_handle_close(Broker *b);

typedef void (*BackupDone)(Broker *b, const char *user, int r, void *userdata);

/* Starts a backup of user's current profile in the thread pool; done (optional) hears the end,
 * and req (optional: profile.backup) progress events and the result. -EBUSY while one runs for
 * user or a prune runs, -ENOENT without a profile. */
int backup_start(Broker *b, const char *user, struct ControlRequest *req, BackupDone done, void *userdata);
bool backup_running(Broker *b, const char *user);
/* Calls fn(userdata) once no backup of user runs (at once if none does). */
void backup_wait(Broker *b, const char *user, void (*fn)(void *userdata), void *userdata);
