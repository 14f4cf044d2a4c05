/* Fuzz target: the slated ⇄ slate-session IPC parser and decoder (both directions are parsed
 * by someone: slated parses what an unprivileged, network-facing process sends it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        /* The first byte picks the chunk size and the limit, like a socket that splits reads. */
        size_t chunk = (data[0] & 15) + 1;
        FrameParser p;
        ipc_parser_init(&p, data[0] & 0x80 ? IPC_PREAUTH_MAX : IPC_FRAME_MAX);
        size_t off = 1;
        while (off < size) {
                size_t n = size - off < chunk ? size - off : chunk, used;
                Frame f;
                int r = frame_parser_feed(&p, data + off, n, &used, &f);
                if (r < 0)
                        break;
                off += used;
                if (r == 1) {
                        IpcMsg m;
                        if (ipc_msg_decode(&f, &m) == 0) {
                                Writer w;
                                writer_init(&w, IPC_FRAME_MAX + FRAME_HEADER_SIZE);
                                if (ipc_msg_encode(&m, &w) == 0 && w.len != f.len + FRAME_HEADER_SIZE)
                                        abort();  /* a decoded message must re-encode to its size */
                                writer_free(&w);
                                ipc_msg_clear(&m);
                        }
                }
        }
        frame_parser_free(&p);
        return 0;
}
