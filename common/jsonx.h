/* json-c helpers: typed getters that fail cleanly on a missing key or a wrong type. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

int jsonx_get_string(json_object *o, const char *key, const char **ret);   /* -ENOENT, -EINVAL */
int jsonx_get_int64(json_object *o, const char *key, int64_t *ret);
int jsonx_get_bool(json_object *o, const char *key, bool *ret);
const char *jsonx_string_or(json_object *o, const char *key, const char *def);
int64_t jsonx_int_or(json_object *o, const char *key, int64_t def);
static inline void json_object_putp(json_object **o) { if (*o) json_object_put(*o); }
#define _cleanup_json_ __attribute__((cleanup(json_object_putp)))
