/* Templates for instant clones (docs/design.md "Instant clones"): per image version, VM shape and
 * QEMU binary, one desktop booted to READY and saved (guest RAM file, device state, frozen disk)
 * under <state>/templates, from which desktops are cloned. A template holds nothing secret: it is
 * saved before any desktop identity, token, key or user exists. Never resumed, never written
 * after it is saved; rebuilt when stale, dropped when it fails (desktops then boot cold). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include "broker/broker.h"
#include "broker/db.h"

typedef struct Template Template;

typedef enum TemplateState { TEMPLATE_BUILDING, TEMPLATE_READY, TEMPLATE_FAILED } TemplateState;

/* What a clone needs from a ready template, copied (the template may go while the clone starts). */
typedef struct TemplateUse {
        char *name;
        char *ram, *state, *disk;      /* paths */
        char state_sha256[65];
        uint64_t ram_size;
        int64_t ram_mtime_ns, ram_ctime_ns;
        int ram_fd;                    /* the sealed RAM copy (a dup, closed by template_use_clear),
                                        * or -1 until a clone made it (template_ram_open) */
} TemplateUse;

void template_use_clear(TemplateUse *u);

/* Templates found under <state>/templates at start (a half-built one is removed). */
void template_load_all(Broker *b);
/* The ready template for a desktop of this version and shape: 0 with *ret filled, or -ENOENT
 * with *ret_why saying why not (caller frees): none yet, being built, failed lately. A template
 * of the same image and shape made for another version or QEMU is stale: it is removed (running
 * clones keep their open files). Never starts a build: that is template_ensure's. */
int template_for(Broker *b, const DbImageVersion *v, uint64_t memory, unsigned vcpus, TemplateUse *ret,
                 char **ret_why);
/* The pool manager, for each pool that clones and only while no logon holds spare boots: the
 * template is made (or remade, when stale or after a failure's pause) ahead of the first desktop
 * that needs it. The build runs at normal CPU priority, unlike a spare's boot: it is the one boot
 * that every later desktop of the version saves, and at idle priority a busy host starved it for
 * minutes (every desktop booting cold meanwhile). */
bool template_ensure(Broker *b, const DbImageVersion *v, uint64_t memory, unsigned vcpus);   /* true: being built */
/* The pool manager's tick: a ready template that no cloning pool can use any more (deleted, set
 * to --boot, or to another image, memory or vCPU count) is removed. */
void template_gc(Broker *b);
/* Blocking (thread pool): do the files still match what was saved? 0, or -EBADMSG with why. */
int template_use_verify(const TemplateUse *u, char **ret_why);
/* Blocking (thread pool): the RAM as a memfd sealed against writes, copied from the file with
 * its holes. 0 with *ret_fd, or an error with why. */
int template_ram_open(const TemplateUse *u, int *ret_fd, char **ret_why);
/* The template keeps a dup of fd for the clones after this one (unless it has one already). */
void template_ram_keep(Broker *b, const char *name, int fd);
/* A clone of it failed to start or resume, or its files changed: removed; desktops boot cold
 * until a rebuild, tried again after a pause. */
void template_invalidate(Broker *b, const char *name, const char *why);
/* A clone of it became ready (ok), or failed in a way a loaded host explains too (its agent
 * silent, not ready in time): TEMPLATE_CLONE_FAILURES such failures in a row drop it. */
#define TEMPLATE_CLONE_FAILURES 3
void template_clone_result(Broker *b, const char *name, bool ok, const char *why);
/* slatectl template rm: -ENOENT when there is no such template. */
int template_remove(Broker *b, const char *name);
json_object *template_list_json(Broker *b);
/* slated stops: a template being built is abandoned (its QEMU killed, its files removed). */
void template_shutdown(Broker *b);
