/* json-c helpers. */
#include <errno.h>
#include "common/jsonx.h"

int jsonx_get_string(json_object *o, const char *key, const char **ret)
{
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        *ret = json_object_get_string(v);
        return 0;
}

int jsonx_get_int64(json_object *o, const char *key, int64_t *ret)
{
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        *ret = json_object_get_int64(v);
        return 0;
}

int jsonx_get_bool(json_object *o, const char *key, bool *ret)
{
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_boolean))
                return -EINVAL;
        *ret = json_object_get_boolean(v);
        return 0;
}

const char *jsonx_string_or(json_object *o, const char *key, const char *def)
{
        const char *s;
        return jsonx_get_string(o, key, &s) == 0 ? s : def;
}

int64_t jsonx_int_or(json_object *o, const char *key, int64_t def)
{
        int64_t v;
        return jsonx_get_int64(o, key, &v) == 0 ? v : def;
}
