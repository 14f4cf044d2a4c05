/* The block store (docs/design.md "Block store"): profile disks backed up block for block on
 * the filesystem's 4 KiB grid, so that no block is stored twice. Chunks are stored once, by id, in
 * numbered pack files; a disk version is a list of maps, each describing 1024 blocks (4 MiB of
 * disk) as runs: "n blocks held by consecutive entries of pack p from entry e", or zeros. A file's
 * blocks, stored in order the first time, stay one run wherever a filesystem puts them, so a
 * version costs a few bytes per run, not 32 per block. A zero block costs nothing, and so does an
 * unchanged 4 MiB region of an incremental backup (its map is the parent's).
 *
 * Ids are HMAC-SHA256 of the plaintext under a key of the store, so equal blocks of any user
 * share one chunk while the ids say nothing to whoever lacks the key. Chunks are zstd-compressed
 * then sealed with AES-256-GCM (nonce: the id's first 12 bytes, associated data: the id:
 * deterministic, which dedup needs and which is safe because one id means one plaintext). Pack
 * indexes and version files carry an HMAC by the store's key. The store's key is random, kept in
 * DIR/key wrapped by the host key (as profile keys are): a copy of the store is of no use without
 * the host key.
 *
 * Crash safety: packs and version files are written to a temporary name, fsync'd and renamed; a
 * version is written only after every pack it needs. A crash leaves at worst a pack no version
 * names. Blocking calls: run them in a thread. One writer at a time per store (the caller's lock). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BLOCK 4096
#define STORE_MAP_BLOCKS 1024                   /* the default (bench 50-store); versions
                                                 * record theirs */
#define STORE_MAP_BLOCKS_MAX 1024
#define STORE_HOST_KEY_LEN 32

typedef struct Store Store;

/* Open DIR (made 0700 with its key when create is set and it has none). */
int store_open(const char *dir, const uint8_t host_key[STORE_HOST_KEY_LEN], bool create, Store **ret,
               char **ret_error);
void store_close(Store *s);
/* The host key rotates: DIR's key is wrapped by new_host from now on (it opens with old_host,
 * or already with new_host after a rotation cut short). 0 also when DIR has no store yet. */
int store_rewrap_key(const char *dir, const uint8_t old_host[STORE_HOST_KEY_LEN],
                     const uint8_t new_host[STORE_HOST_KEY_LEN], char **ret_error);
/* Blocks per map for the backups this handle makes: a power of two, 64 to 1024 (smaller maps:
 * less rewritten per incremental, larger version files). For measuring (bench/). */
int store_set_map_blocks(Store *s, unsigned n);

/* Told how far a backup, restore or replication has got (op "backup", "restore", "replicate";
 * bytes done of total), at most 65 times a call. */
typedef void (*StoreProgressFn)(void *userdata, const char *op, uint64_t done, uint64_t total);
void store_set_progress(Store *s, StoreProgressFn fn, void *userdata);

/* Reads len bytes at offset of the disk being backed up: 0, or a negative errno. */
typedef int (*StoreReadFn)(void *userdata, uint64_t offset, void *buf, size_t len);

typedef struct StoreExtent {
        uint64_t offset, length;
} StoreExtent;

typedef struct StoreStats {
        uint64_t blocks_read;   /* blocks read from the disk */
        uint64_t zero_blocks;   /* of those, all zeros: not stored */
        uint64_t dup_blocks;    /* of those, already in the store */
        uint64_t new_chunks;    /* chunks written (data and maps) */
        uint64_t new_bytes;     /* bytes those added to the store (sealed, with their headers) */
        uint64_t maps_reused;   /* 4 MiB regions taken from the parent unread */
        uint64_t bytes_written; /* restore: bytes written to the target */
} StoreStats;

/* A new version of name from the disk behind read (disk_size bytes, a multiple of 4 KiB).
 * With parent > 0, only the blocks in the dirty extents are read and the rest is the parent's:
 * the caller vouches that nothing outside them changed since parent was taken (a trusted dirty
 * bitmap). parent 0: every block is read (dedup still stores nothing twice), or, with extents
 * given (n_dirty > 0), only those: the caller vouches that the rest reads as zeros (a sparse
 * disk's holes). */
int store_backup(Store *s, const char *name, uint64_t disk_size, StoreReadFn read, void *userdata, int parent,
                 const StoreExtent *dirty, size_t n_dirty, StoreStats *st, int *ret_version, char **ret_error);

/* Writes len bytes at offset of the disk being restored: 0, or a negative errno. */
typedef int (*StoreWriteFn)(void *userdata, uint64_t offset, const void *buf, size_t len);

/* Writes version of name through write (zero blocks are skipped: the target must read zeros
 * there, as a fresh sparse file or a new qcow2 does, to end up bit for bit the disk). Every
 * chunk is checked against its id: a damaged one fails the restore, naming the block. */
int store_restore(Store *s, const char *name, int version, StoreWriteFn write, void *userdata, StoreStats *st,
                  char **ret_error);
/* A StoreWriteFn for an fd (userdata: int *), fsync'd by store_restore_fd. */
int store_write_fd(void *userdata, uint64_t offset, const void *buf, size_t len);
int store_restore_fd(Store *s, const char *name, int version, int fd, StoreStats *st, char **ret_error);

/* The names (users) with versions, in directory order (free with strv_free). */
int store_names(Store *s, char ***ret, size_t *ret_n);
/* Versions of name, ascending (*ret malloc'ed; none: 0 and *ret_n = 0). */
int store_versions(Store *s, const char *name, int **ret, size_t *ret_n);
/* The disk size a version describes, and when it was made (seconds since the epoch; optional). */
int store_version_info(Store *s, const char *name, int version, uint64_t *ret_size, uint64_t *ret_created);

/* Copies to the store at dest_dir (made with this store's wrapped key and id when missing; it
 * opens with the same host key) every pack it lacks, then every version file it lacks: a replica
 * for disaster recovery. A pack holds only chunks stored nowhere else, so nothing is sent twice;
 * packs first, so a version never arrives before its chunks; an interrupted run leaves whole
 * packs behind and the next one sends only what is still missing. A dest_dir holding another
 * store is refused. */
typedef struct StoreReplicaStats {
        uint64_t chunks_sent, bytes_sent, chunks_present, versions_sent;
} StoreReplicaStats;
int store_replicate(Store *s, const uint8_t host_key[STORE_HOST_KEY_LEN], const char *dest_dir,
                    StoreReplicaStats *st, char **ret_error);
/* dest_dir "[user@]host:/path": the replica is on another host, reached with the system's sftp
 * (program, default "sftp") in batch mode, with ssh_config (optional) as its -F file: the far
 * side needs only sshd. Each pack is put under a temporary name (put -f: fsync'd) and renamed. */
void store_set_sftp(Store *s, const char *program, const char *ssh_config);

/* Keeps, per name, the newest version, the newest version of each of the last keep_daily days
 * that have one and of each of the last keep_weekly weeks, and drops the other versions; then
 * every chunk no kept version names goes: each pack holding some is rewritten in place without
 * them (entries keep their numbers; tmp, fsync, rename). Crash-safe: versions go first, then one
 * pack at a time, each old or new, so a crash leaves at worst garbage the next prune takes. */
typedef struct StorePruneStats {
        uint64_t versions_kept, versions_removed, chunks_removed, packs_rewritten, bytes_freed;
} StorePruneStats;
int store_prune(Store *s, unsigned keep_daily, unsigned keep_weekly, StorePruneStats *st, char **ret_error);
/* For tests: the time new versions are stamped with (0: the clock); a hook called after each pack
 * a prune rewrites ("prune-pack-rewritten") and after each pack is committed ("pack-committed";
 * a replication's on the replica). */
void store_set_time(Store *s, uint64_t t);
void store_set_crash_hook(Store *s, void (*crash)(void *userdata, const char *point), void *userdata);

typedef struct StoreCheck {
        uint64_t packs, chunks, versions;
        uint64_t bad_packs;     /* unreadable index: their chunks are unknown */
        uint64_t bad_chunks;    /* read_data: a record that does not open or is not its id */
        uint64_t bad_versions;  /* a version file that does not parse or whose MAC fails */
        uint64_t damaged_versions;     /* versions naming a missing or bad chunk */
        char *report;           /* one line per problem, the affected versions named; NULL if none */
} StoreCheck;
/* Reads every pack's index again first: the store as it is on disk now. */
int store_check(Store *s, bool read_data, StoreCheck *ret);
void store_check_free(StoreCheck *c);

typedef struct StoreUsage {
        uint64_t packs, chunks, stored_bytes;   /* pack files' total size */
} StoreUsage;
void store_usage(Store *s, StoreUsage *ret);
