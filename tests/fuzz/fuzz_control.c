/* Fuzz target: a control API request line (slatectl today; slate-web relays HTTP requests to
 * the same API, so the parser sees what HTTP clients send), then its arguments checked against
 * a schema with every argument type, as the dispatcher does before any handler runs. */
#include <stdint.h>
#include "broker/control.h"

static void no_handler(Broker *b, ControlRequest *req, json_object *args) {}

static const ControlCommand schema = {
        "pool.create", no_handler, true,
        { { "name", CONTROL_ARG_STRING, true, 1, 64 }, { "warm", CONTROL_ARG_INT, false, 0, 1000 },
          { "memory", CONTROL_ARG_INT, false, 64 << 20, (int64_t)1 << 40 }, { "current", CONTROL_ARG_BOOL, false, 0, 0 },
          { "path", CONTROL_ARG_STRING, false, 1, 0 } },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        ControlParsed p;
        const char *err;
        if (control_request_parse((const char *)data, size, &p, &err) == 0) {
                char msg[160];
                control_args_check(&schema, p.args, msg, sizeof msg);
        }
        json_object_put(p.root);
        return 0;
}
