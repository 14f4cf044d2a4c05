/* What slatectl's command groups share: calling slated and printing a list or a one-line
 * answer. Prints only what ctl_call returned; never talks to slated otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include "broker/ctl_cmds.h"
#include "common/util.h"

int ctl_cmd_list(Ctl *c, const char *cmd, json_object *args, const char *key, const char *const *header,
                 size_t ncols, void (*row)(Table *t, json_object *o))
{
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, cmd, args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        json_object *list = res;
        if (key) {
                list = NULL;
                json_object_object_get_ex(res, key, &list);
        }
        Table t = { .ncols = ncols, .header = header };
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        for (size_t j = 0; j < n; j++)
                row(&t, json_object_array_get_idx(list, j));
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

int ctl_cmd_done(Ctl *c, const char *cmd, json_object *args, const char *what, const char *id, const char *done)
{
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, cmd, args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else {
                _cleanup_free_ char *s = sanitize(id);
                printf("%s %s %s\n", what, s, done);
        }
        return EXIT_OK;
}

int ctl_cmd_show(Ctl *c, const char *cmd, json_object *args, void (*print)(json_object *res))
{
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, cmd, args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print(res);
        return EXIT_OK;
}
