/* Fuzz target: the slate.conf parser. The file is the administrator's, not hostile, but the
 * parser is the first thing slated runs and `slated -n` checks files by hand: it must reject
 * anything, not crash on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        SlateConfig c;
        char *errors = NULL;
        config_init_defaults(&c);
        int r = config_parse(&c, "fuzz.conf", (const char *)data, size, &errors);
        /* Errors come with messages, success without. */
        if (r < 0 && (!errors || !*errors))
                abort();
        if (r == 0)
                config_finish(&c);
        free(errors);
        config_free(&c);
        return 0;
}
