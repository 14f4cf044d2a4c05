/* slatectl's commands, one table per group of related commands, each ended by an entry whose
 * name is NULL. slatectl.c looks commands up in them and builds --help from them. */
#pragma once
#include "broker/ctl_args.h"

extern const Command ctl_cmds_status[];       /* status, audit */
extern const Command ctl_cmds_image[];        /* image ... */
extern const Command ctl_cmds_pool[];         /* pool ... */
extern const Command ctl_cmds_desktop[];      /* desktop ..., session ... */
extern const Command ctl_cmds_app[];          /* app ... */
extern const Command ctl_cmds_profile[];      /* profile ..., user show */
extern const Command ctl_cmds_store[];        /* profile history/restore, store ... */

#include "broker/ctl_format.h"

/* The list commands: call cmd, print its result raw with --json, else as a table with one
 * row per element of the result (an array) or of its member key (if key is not NULL),
 * made by row(). Returns the exit status. */
int ctl_cmd_list(Ctl *c, const char *cmd, json_object *args, const char *key, const char *const *header,
                 size_t ncols, void (*row)(Table *t, json_object *o));

/* The commands that act on one object: call cmd, print its result raw with --json, else
 * "WHAT ID DONE" (id sanitized). Returns the exit status. */
int ctl_cmd_done(Ctl *c, const char *cmd, json_object *args, const char *what, const char *id, const char *done);

/* The commands that show one object: call cmd, print its result raw with --json, else with print. */
int ctl_cmd_show(Ctl *c, const char *cmd, json_object *args, void (*print)(json_object *res));
