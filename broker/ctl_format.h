/* slatectl's human output: sizes, ages, times, table cells and aligned tables. Every string
 * that came from slated passes through sanitize() before it reaches the terminal. No I/O
 * except the print functions, which write to the FILE they are given (or stdout). */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include "common/jsonx.h"

/* Copy s with control characters replaced, so a reply can never drive the terminal. */
char *sanitize(const char *s);

char *fmt_bytes(uint64_t v);          /* 2.3M, 512M, 2G: like ls -h */
char *fmt_age(int64_t s);             /* one unit: 12s, 5m, 3h, 3d */
char *fmt_duration(int64_t s);        /* two units: 5m 20s, 3h 1m */
char *fmt_seconds(int64_t s);         /* exact, as parse_duration reads it: 0s, 90 → 1m30s, 1h */
char *fmt_time(int64_t t);            /* local YYYY-MM-DD HH:MM; "-" for 0 */
char *fmt_time_s(int64_t t);          /* local YYYY-MM-DD HH:MM:SS */

/* Any JSON field as a table cell: strings sanitized, null or missing as "-". */
char *cell(json_object *o, const char *key);
char *cell_bytes(json_object *o, const char *key);
char *cell_prefix(json_object *o, const char *key, size_t n);
/* A duration in seconds (fmt_seconds), or the field as it is if not an integer. */
char *cell_seconds(json_object *o, const char *key);
/* An array of strings joined with sep; empty_text for an empty array, "-" if missing. */
char *cell_list(json_object *o, const char *key, const char *sep, const char *empty_text);

/* Aligned columns, a header row, two spaces between columns. */
typedef struct Table {
        size_t ncols, nrows, cap;
        const char *const *header;
        char **cells;                 /* nrows * ncols, owned */
} Table;

/* Append a row of ncols cells (char *, ownership passes to the table). */
void table_row(Table *t, ...);
void table_print(Table *t, FILE *f);
void table_free(Table *t);

/* "key:      value" line for one object; value is owned. */
void kv(const char *key, char *value);
void print_json(json_object *o);
