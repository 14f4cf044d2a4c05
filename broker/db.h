/* slated's state in SQLite (WAL): images and versions, pools, desktops, sessions, app layers,
 * profiles, audit. Only db.c includes sqlite3.h. Schema versioned by PRAGMA user_version with
 * migrations; every multi-row change is one transaction. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Db Db;

typedef struct DbImageVersion {
        char *name;
        int version;
        bool current;
        char *state;         /* available | retired */
        char *format;        /* format the file was published in */
        uint64_t size;       /* bytes of the stored qcow2 */
        uint64_t virtual_size;
        char *sha256;
        char *path;          /* stored qcow2 */
        char *kernel, *initrd, *cmdline; /* direct kernel boot, or NULL */
        int64_t created;
} DbImageVersion;

typedef struct DbPool {
        char *name;
        char *image;
        unsigned warm, max;
        uint64_t memory;
        unsigned vcpus;
        char *overlay;       /* encrypted | ram | plain */
        int64_t created;
        unsigned disconnect_timeout; /* seconds a disconnected session is kept */
        unsigned idle_timeout;       /* seconds without input before a session ends; 0 = never */
        unsigned max_age;            /* seconds after which an idle desktop is replaced; 0 = never */
        bool profiles;               /* users get their roaming profile disk (kiosk pools: no) */
        bool layer_refuse_older;     /* layers made for an older version of the image: refused, not warned */
        uint64_t profile_size;       /* bytes for a new profile disk; 0: the profile-size setting */
        unsigned usable_timeout;     /* seconds a logon waits for the desktop to be usable */
        bool clone;                  /* desktops cloned from a template (instant clones), else booted */
} DbPool;

typedef struct DbSession {
        char *id, *user;
        uint32_t uid;
        char *pool, *desktop, *client;
        int64_t since;
        unsigned width, height;
        char *state;            /* starting | active | disconnected | ending */
        char *end_reason;       /* set once ending */
} DbSession;

typedef struct DbSessionStep {
        unsigned attempt;       /* 1 = the logon, then each reconnect; the logoff follows */
        char *kind;             /* logon | reconnect | logoff */
        char *step;
        uint32_t ms;
        char *result;
} DbSessionStep;

typedef struct DbAudit {
        int64_t seq, ts;
        char *kind, *subject, *detail;
} DbAudit;

typedef struct DbDesktop {
        char *id;
        char *pool;
        char *image;
        int version;
        char *state;
        char *overlay_mode;
        char *overlay_path;
        char *run_dir;
        pid_t pid;
        int64_t created;
        bool cloned;               /* resumed from a template (shown as its boot mode) */
} DbDesktop;

typedef struct DbAppVersion {
        char *name;
        int version;
        bool current;
        char *state;            /* available | retired */
        char *path;             /* the version's dir: layer.img, manifest.json, files.txt */
        uint64_t size;
        char *sha256;
        char *image;            /* made against this golden image and version */
        int image_version;
        char *source;           /* capture | tree */
        int64_t created;
        char *fingerprint;      /* of layer.img when last hashed (layer_fingerprint_format) */
} DbAppVersion;

typedef struct DbProfile {
        char *user;
        int generation;
        char *path;
        uint64_t size;
        char *wrapped_key;
        int64_t created, last_attach;
        char *attached_to;      /* desktop id while attached, else NULL */
        bool clean;             /* detached cleanly last time */
        bool current;
        int backup_version;     /* the store version its dirty bitmap counts from; 0: none */
} DbProfile;

int db_open(const char *path, Db **ret);
void db_close(Db *db);

/* Images. db_image_version_add assigns the next version number (returned in v->version) and,
 * when make_current, makes it current, all in one transaction. */
int db_image_version_add(Db *db, DbImageVersion *v, bool make_current);
int db_image_versions(Db *db, const char *name, DbImageVersion **ret, size_t *ret_n); /* -ENOENT: no image */
int db_image_names(Db *db, char ***ret, size_t *ret_n);
/* The current, available version of an image (*ret_v points into *ret_all, freed with
 * db_image_version_free_array), or -ENOENT. */
int db_image_current(Db *db, const char *name, DbImageVersion **ret_v, DbImageVersion **ret_all, size_t *ret_n);
int db_image_current_version(Db *db, const char *name);   /* 0 when none */
int db_image_set_current(Db *db, const char *name, int version);
int db_image_version_set_state(Db *db, const char *name, int version, const char *state);
int db_image_version_delete(Db *db, const char *name, int version);
void db_image_version_free_array(DbImageVersion *v, size_t n);

/* Pools: put = insert or replace. */
int db_pool_put(Db *db, const DbPool *p);
int db_pool_delete(Db *db, const char *name);
int db_pool_list(Db *db, DbPool **ret, size_t *ret_n);
void db_pool_free_array(DbPool *p, size_t n);

/* Entitlements: principal is "user:NAME", "group:NAME" or "all". */
int db_entitlement_set(Db *db, const char *pool, const char *principal, bool on);
int db_entitlement_list(Db *db, const char *pool, char ***ret, size_t *ret_n);

/* Sessions (so a restarted slated keeps them, as disconnected). */
int db_session_put(Db *db, const DbSession *s);
int db_session_delete(Db *db, const char *id);
int db_session_list(Db *db, DbSession **ret, size_t *ret_n);
void db_session_free_array(DbSession *a, size_t n);
/* A session's timeline (deleted with the session). */
int db_session_steps_put(Db *db, const char *session, unsigned attempt, const char *kind, const DbSessionStep *steps,
                         size_t n);
int db_session_steps_list(Db *db, const char *session, DbSessionStep **ret, size_t *ret_n);
void db_session_steps_free_array(DbSessionStep *a, size_t n);

int db_audit_list(Db *db, const char *kind_prefix, unsigned limit, DbAudit **ret, size_t *ret_n);
void db_audit_free_array(DbAudit *a, size_t n);

/* Desktops. */
int db_desktop_put(Db *db, const DbDesktop *d);
int db_desktop_delete(Db *db, const char *id);
int db_desktop_list(Db *db, DbDesktop **ret, size_t *ret_n);
void db_desktop_free_array(DbDesktop *d, size_t n);

/* Audit trail: what happened to whom. */
int db_audit(Db *db, const char *kind, const char *subject, const char *detail);

/* App layers. db_app_version_add assigns the next version (v->version) and makes it
 * current when asked (the first version always). */
int db_app_version_add(Db *db, DbAppVersion *v, bool make_current);
int db_app_versions(Db *db, const char *name, DbAppVersion **ret, size_t *ret_n);  /* -ENOENT: no app */
int db_app_names(Db *db, char ***ret, size_t *ret_n);
int db_app_set_current(Db *db, const char *name, int version);
int db_app_version_set_state(Db *db, const char *name, int version, const char *state);
int db_app_version_set_fingerprint(Db *db, const char *name, int version, const char *fp);
int db_app_version_delete(Db *db, const char *name, int version);   /* the app too when it was the last */
void db_app_version_free(DbAppVersion *v);         /* its strings; the struct itself is the caller's */
void db_app_version_free_array(DbAppVersion *v, size_t n);
int db_app_entitlement_set(Db *db, const char *app, const char *principal, bool on);
int db_app_entitlement_list(Db *db, const char *app, char ***ret, size_t *ret_n);

/* Profiles: the current generation of a user's profile, or -ENOENT. */
int db_profile_get(Db *db, const char *user, DbProfile *ret);
int db_profile_list(Db *db, bool all_generations, DbProfile **ret, size_t *ret_n);
/* A new generation, current; the one before stays as an older generation. */
int db_profile_add(Db *db, DbProfile *p);
int db_profile_set_attached(Db *db, const char *user, int generation, const char *desktop, int64_t when);
int db_profile_set_detached(Db *db, const char *user, int generation, bool clean);
int db_profile_set_size(Db *db, const char *user, int generation, uint64_t size);
int db_profile_set_backup(Db *db, const char *user, int generation, int version);
int db_profile_delete(Db *db, const char *user, int generation);
/* No current generation any more (profile reset): the next logon creates one. */
int db_profile_retire(Db *db, const char *user, int generation);
void db_profile_free(DbProfile *p);
void db_profile_free_array(DbProfile *p, size_t n);
/* Host key rotation: every row's wrapped key replaced, in one transaction (n rows of users[i],
 * generations[i] → wrapped[i]). */
int db_profile_rewrap(Db *db, char *const *users, const int *generations, char *const *wrapped, size_t n);
int db_profile_quota_set(Db *db, const char *user, uint64_t size);
int db_profile_quota_get(Db *db, const char *user, uint64_t *ret);    /* -ENOENT: none set */
