/* The control API's dispatcher checks every request against the command's schema before a
 * handler runs: unknown arguments, missing required ones, wrong types and values out of range
 * are refused with the argument's name; a valid request passes untouched. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include "broker/control.h"

static void no_handler(Broker *b, ControlRequest *req, json_object *args) {}

static const ControlCommand create = {
        "pool.create", no_handler, true,
        { { "name", CONTROL_ARG_STRING, true, 1, 8 }, { "warm", CONTROL_ARG_INT, false, 0, 1000 },
          { "current", CONTROL_ARG_BOOL, false, 0, 0 }, { "path", CONTROL_ARG_STRING, false, 1, 0 } },
};

static int check(const char *json, char *msg)
{
        json_object *o = json_tokener_parse(json);
        cr_assert_not_null(o, "bad test JSON %s", json);
        int r = control_args_check(&create, o, msg, 160);
        json_object_put(o);
        return r;
}

Test(control, a_valid_request_passes)
{
        char msg[160] = "";
        cr_assert_eq(check("{\"name\":\"p\",\"warm\":2,\"current\":true,\"path\":\"/x\"}", msg), 0, "%s", msg);
        cr_assert_eq(check("{\"name\":\"p\"}", msg), 0, "optional arguments may be left out: %s", msg);
        cr_assert_eq(check("{\"name\":\"p\",\"warm\":null}", msg), 0, "null means absent: %s", msg);
}

Test(control, refusals_name_the_argument)
{
        char msg[160];
        cr_assert_eq(check("{}", msg), -EINVAL);
        cr_assert_str_eq(msg, "name is required");
        cr_assert_eq(check("{\"name\":\"p\",\"wram\":1}", msg), -EINVAL);
        cr_assert_str_eq(msg, "unknown argument \"wram\"");
        cr_assert_eq(check("{\"name\":\"p\",\"warm\":\"2\"}", msg), -EINVAL);
        cr_assert_str_eq(msg, "warm must be an integer");
        cr_assert_eq(check("{\"name\":\"p\",\"warm\":1001}", msg), -EINVAL);
        cr_assert_str_eq(msg, "warm must be 0-1000");
        cr_assert_eq(check("{\"name\":\"p\",\"warm\":-1}", msg), -EINVAL);
        cr_assert_eq(check("{\"name\":\"p\",\"current\":1}", msg), -EINVAL);
        cr_assert_str_eq(msg, "current must be true or false");
        cr_assert_eq(check("{\"name\":\"toolongname\"}", msg), -EINVAL);
        cr_assert_str_eq(msg, "name must be 1-8 characters");
        cr_assert_eq(check("{\"name\":\"\"}", msg), -EINVAL);
}

Test(control, strings_without_a_limit_are_capped)
{
        char msg[160];
        static char big[CONTROL_STRING_MAX + 64];
        int n = snprintf(big, sizeof big, "{\"name\":\"p\",\"path\":\"");
        memset(big + n, 'a', CONTROL_STRING_MAX + 1);
        strcpy(big + n + CONTROL_STRING_MAX + 1, "\"}");
        cr_assert_eq(check(big, msg), -EINVAL);
        cr_assert(strstr(msg, "path must be") != NULL, "%s", msg);
}

Test(control, a_command_without_arguments_refuses_any)
{
        static const ControlCommand status = { "status", no_handler, false, { {} } };
        char msg[160];
        json_object *o = json_tokener_parse("{\"x\":1}");
        cr_assert_eq(control_args_check(&status, o, msg, sizeof msg), -EINVAL);
        json_object_put(o);
        cr_assert_eq(control_args_check(&status, NULL, msg, sizeof msg), 0);
}
