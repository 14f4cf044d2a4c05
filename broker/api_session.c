/* Control handlers for sessions and the audit log: list, show (with every logon, reconnect
 * and logoff step by step), end. Ending goes through the logoff step list like any other end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "broker/api.h"
#include "broker/control.h"
#include "broker/logoff.h"
#include "broker/session.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"

static void h_session_list(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user = jsonx_string_or(args, "user", NULL), *pool = jsonx_string_or(args, "pool", NULL);
        json_object *arr = json_object_new_array();
        for (Session *s = b->sessions; s; s = s->next)
                if ((!user || strcmp(user, s->user) == 0) && (!pool || strcmp(pool, s->pool) == 0))
                        json_object_array_add(arr, session_json(s));
        control_reply(req, arr);
}

static Session *find_or_reply(Broker *b, ControlRequest *req, json_object *args)
{
        const char *id;
        Session *s;
        if (jsonx_get_string(args, "id", &id) < 0 || !(s = session_find(b, id))) {
                control_reply_error(req, ENOENT, "no such session");
                return NULL;
        }
        return s;
}

static void h_session_show(Broker *b, ControlRequest *req, json_object *args)
{
        Session *s = find_or_reply(b, req, args);
        if (s)
                control_reply(req, session_json_full(s));
}

static void h_session_end(Broker *b, ControlRequest *req, json_object *args)
{
        Session *s = find_or_reply(b, req, args);
        if (!s)
                return;
        log_info("session %s (%s): ended by an administrator", s->id, s->user);
        logoff_start(s, "ended by administrator");
        control_reply(req, NULL);
}

static void h_audit(Broker *b, ControlRequest *req, json_object *args)
{
        int64_t limit = jsonx_int_or(args, "limit", 50);
        if (limit < 1 || limit > 10000) {
                control_reply_error(req, EINVAL, "limit must be 1-10000");
                return;
        }
        DbAudit *a;
        size_t n;
        if (db_audit_list(b->db, jsonx_string_or(args, "kind", NULL), (unsigned)limit, &a, &n) < 0) {
                control_reply_error(req, EIO, "database error");
                return;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "seq", json_object_new_int64(a[i].seq));
                json_object_object_add(o, "ts", json_object_new_int64(a[i].ts));
                json_object_object_add(o, "kind", json_object_new_string(a[i].kind));
                json_object_object_add(o, "subject", json_object_new_string(a[i].subject));
                json_object_object_add(o, "detail", json_object_new_string(a[i].detail));
                json_object_array_add(arr, o);
        }
        db_audit_free_array(a, n);
        control_reply(req, arr);
}

static const ControlCommand commands[] = {
        { "session.list", h_session_list, false,
          { { "user", CONTROL_ARG_STRING, false, 1, 64 }, { "pool", CONTROL_ARG_STRING, false, 1, 64 } } },
        { "session.show", h_session_show, false, { { "id", CONTROL_ARG_STRING, true, 1, 32 } } },
        { "session.end", h_session_end, true, { { "id", CONTROL_ARG_STRING, true, 1, 32 } } },
        { "audit", h_audit, false,
          { { "limit", CONTROL_ARG_INT, false, 1, 10000 }, { "kind", CONTROL_ARG_STRING, false, 1, 64 } } },
        {},
};

void api_session_register(Control *c) { control_register(c, commands); }
