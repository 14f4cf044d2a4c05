/* What makes a stateless desktop a user's own (DESIGN.md "App layers", "Profiles"): at logon the
 * user's entitled app layers and profile disk are verified and hot-plugged into the claimed
 * desktop, then named to the agent in SESSION_START; at logoff the profile is detached after the
 * agent let go of it. Steps of the logon and logoff lists (logon.c, logoff.c). Decides only from
 * slated's own catalogue: nothing the guest says chooses a disk. */
#pragma once
#include "agent/proto.h"
#include "broker/broker.h"
#include "broker/steps.h"

/* The apps whose entitlements name this user (groups: the user's gids), sorted by name. */
int userdisks_entitled_apps(Broker *b, const char *user, const gid_t *groups, int ngroups, char ***ret, size_t *ret_n);
/* Logon step "apps": the current versions of the user's entitled layers for the desktop's image. */
int userdisks_apps(Session *s, StepRun *run);
/* Logon step "profile": the user's profile disk (created at the first logon), locked to this desktop. */
int userdisks_profile(Session *s, StepRun *run);
/* Keep profile-spares empty disks of profile-size ready (one made at a time, in the thread pool),
 * so a first logon does not wait for qemu-img's LUKS header. Call at start and after a claim. */
void userdisks_spares_refill(Broker *b);
/* Its undo (a later logon step failed): the lock is released; the desktop is destroyed. */
void userdisks_profile_undo(Session *s);
/* Logoff step "profile-detach": unplug it and release the lock (clean when the agent stopped). */
int userdisks_detach(Session *s, StepRun *run, bool agent_stopped);
/* Logoff step "profile-backup", after the desktop is gone: the profile to the block store
 * (backup.h). A logon of the user meanwhile waits for it in its "profile" step. */
int userdisks_backup(Session *s, StepRun *run);
