/* Fuzz target: a control API request line (slatectl today; slate-web relays HTTP requests to
 * the same API, so the parser sees what HTTP clients send). */
#include <stdint.h>
#include "broker/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        ControlParsed p;
        const char *err;
        control_request_parse((const char *)data, size, &p, &err);
        json_object_put(p.root);
        return 0;
}
