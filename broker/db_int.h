/* Inside the database module (db.c: schema, images, pools, desktops, sessions; db_app.c: app
 * layers, their entitlements, profiles). The only headers besides those two files that may see
 * sqlite3.h's types: nothing else includes this. */
#pragma once
#include <sqlite3.h>
#include "broker/db.h"

struct Db {
        sqlite3 *h;
        char *path;
};

/* Log what failed with SQLite's message; -EEXIST for a constraint, -EBUSY, else -EIO. */
int dbi_error(Db *db, const char *what);
int dbi_exec(Db *db, const char *sql);
int dbi_prepare(Db *db, const char *sql, sqlite3_stmt **ret);
void dbi_bind_text(sqlite3_stmt *s, int i, const char *v);      /* NULL binds NULL */
char *dbi_col_text(sqlite3_stmt *s, int i);                     /* NULL for NULL */
/* Step a statement that returns no rows, then finalize it. */
int dbi_step_done(Db *db, sqlite3_stmt *s, const char *what);
/* Collect every row of a prepared statement into a growing array of elem_size elements,
 * each filled by fn. Finalizes the statement. */
typedef void (*RowFn)(sqlite3_stmt *s, void *elem);
int dbi_collect_rows(Db *db, sqlite3_stmt *s, size_t elem_size, RowFn fn, void **ret, size_t *ret_n);
void dbi_row_text(sqlite3_stmt *s, void *e);
