/* Profile backups to the block store (streaming/store.h, docs/design.md "Block store"): after
 * every logout the user's profile disk becomes a new version, reading only the blocks its dirty
 * bitmap names since the last committed version (all of them when the bitmap is missing or
 * untrusted, logged as such); the bitmap is cleared only once the version is committed. One
 * backup at a time per user; a logon of that user waits for it (the disk is open meanwhile). */
#pragma once
#include <stdbool.h>
#include "broker/broker.h"

typedef void (*BackupDone)(Broker *b, const char *user, int r, void *userdata);

/* Starts a backup of user's current profile in the thread pool; done (optional) hears the end.
 * -EBUSY while one runs for user, -ENOENT without a profile. */
int backup_start(Broker *b, const char *user, BackupDone done, void *userdata);
bool backup_running(Broker *b, const char *user);
/* Calls fn(userdata) once no backup of user runs (at once if none does). */
void backup_wait(Broker *b, const char *user, void (*fn)(void *userdata), void *userdata);
