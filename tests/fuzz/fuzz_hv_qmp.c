/* Fuzz target for the QMP parser: bytes from QEMU go through the line splitter and the message
 * classifier exactly as qmp.c feeds them. It must never do I/O or keep state between inputs. */
#include <stdint.h>
#include <stddef.h>
#include "broker/hv_qmp.h"

static int fuzz_on_line(char *line, size_t len, void *userdata)
{
        QmpMsg m;
        if (qmp_msg_parse(line, len, &m) == 0)
                qmp_msg_clear(&m);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        QmpLines l;
        qmp_lines_init(&l);
        /* Two feeds split mid-input: exercises lines spanning reads. */
        size_t half = size / 2;
        if (qmp_lines_feed(&l, (const char *)data, half, fuzz_on_line, NULL) == 0)
                qmp_lines_feed(&l, (const char *)data + half, size - half, fuzz_on_line, NULL);
        qmp_lines_clear(&l);
        return 0;
}
