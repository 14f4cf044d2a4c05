/* Fuzz target for the agent wire protocol: the guest is hostile, so every byte the broker reads
 * from slate-agent goes through this parser. Feeds the input in varying chunk sizes (the first
 * byte picks the pattern) and decodes and re-encodes every complete frame. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "agent/proto.h"

static void check_frame(const AgentFrame *f)
{
        AgentMsg m;
        if (agent_msg_decode(f, &m) < 0)
                return;
        /* What decodes must re-encode to the very same payload. */
        Writer w;
        writer_init(&w, AGENT_HEADER_SIZE + AGENT_FRAME_MAX);
        int r = agent_msg_encode(&m, &w);
        assert(r == 0);
        assert(w.len == AGENT_HEADER_SIZE + f->len);
        assert(f->len == 0 || memcmp(w.data + AGENT_HEADER_SIZE, f->payload, f->len) == 0);
        writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size == 0)
                return 0;
        /* Chunk sizes 1..16 cycling from the seed byte, so frames split at every offset. */
        uint8_t seed = data[0];
        data++, size--;

        AgentParser p;
        /* A low limit half the time so the -EMSGSIZE path is reachable with small inputs. */
        agent_parser_init(&p, seed & 0x80 ? 64 : 0);
        size_t off = 0, i = 0;
        while (off < size) {
                size_t chunk = (size_t)((seed + i++) % 16) + 1;
                size_t n = chunk < size - off ? chunk : size - off;
                size_t fed = 0;
                while (fed < n) {
                        size_t used = 0;
                        AgentFrame f;
                        int r = agent_parser_feed(&p, data + off + fed, n - fed, &used, &f);
                        assert(used <= n - fed);
                        if (r < 0) {
                                assert(r == -EBADMSG || r == -EMSGSIZE || r == -ENOMEM);
                                goto out;
                        }
                        fed += used;
                        if (r == 0) {
                                assert(fed == n);
                                break;
                        }
                        assert(f.len <= p.max);
                        check_frame(&f);
                }
                off += n;
        }
out:
        agent_parser_free(&p);
        return 0;
}
