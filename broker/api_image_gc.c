/* `image gc`: remove retired golden image versions that no desktop uses any more, files and
 * catalogue rows. Current or available versions are never touched. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "broker/api.h"
#include "broker/desktop.h"
#include "broker/control.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/catalog.h"

static void h_gc(Broker *b, ControlRequest *req, json_object *args)
{
        char **names;
        size_t n;
        if (db_image_names(b->db, &names, &n) < 0) {
                control_reply_error(req, EIO, "database error");
                return;
        }
        json_object *removed = json_object_new_array();
        uint64_t freed = 0;
        for (size_t i = 0; i < n; i++) {
                DbImageVersion *vs;
                size_t vn;
                if (db_image_versions(b->db, names[i], &vs, &vn) == 0) {
                        for (size_t k = 0; k < vn; k++) {
                                DbImageVersion *v = &vs[k];
                                if (strcmp(v->state, "retired") != 0 || v->current ||
                                    desktop_count_version(b, v->name, v->version) > 0)
                                        continue;
                                int r = catalog_remove(b->image_dir, v->name, v->version);
                                if (r < 0) {
                                        log_error("image %s: gc of v%d: %s", v->name, v->version, strerror(-r));
                                        continue;
                                }
                                db_image_version_delete(b->db, v->name, v->version);
                                char detail[32];
                                snprintf(detail, sizeof detail, "v%d", v->version);
                                db_audit(b->db, "image.gc", v->name, detail);
                                log_info("image %s: v%d removed by gc (%llu bytes)", v->name, v->version,
                                         (unsigned long long)v->size);
                                freed += v->size;
                                json_object *o = json_object_new_object();
                                json_object_object_add(o, "name", json_object_new_string(v->name));
                                json_object_object_add(o, "version", json_object_new_int(v->version));
                                json_object_object_add(o, "size", json_object_new_int64((int64_t)v->size));
                                json_object_array_add(removed, o);
                        }
                        db_image_version_free_array(vs, vn);
                }
                free(names[i]);
        }
        free(names);
        json_object *res = json_object_new_object();
        json_object_object_add(res, "removed", removed);
        json_object_object_add(res, "freed", json_object_new_int64((int64_t)freed));
        control_reply(req, res);
}

static const ControlCommand commands[] = {
        { "image.gc", h_gc, true, { {} } },
        {},
};

void api_image_gc_register(Control *c) { control_register(c, commands); }
