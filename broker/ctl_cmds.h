/* slatectl's commands, one table per group of related commands, each ended by an entry whose
 * name is NULL. slatectl.c looks commands up in them and builds --help from them. */
#pragma once
#include "broker/ctl_args.h"

extern const Command ctl_cmds_status[];       /* status, audit */
extern const Command ctl_cmds_image[];        /* image ... */
extern const Command ctl_cmds_pool[];         /* pool ... */
extern const Command ctl_cmds_desktop[];      /* desktop ..., session ... */
