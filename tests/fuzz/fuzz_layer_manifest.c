/* Fuzz target: the app layer manifest parser. Manifests sit in the catalogue next to an image an
 * administrator handed over, so a changed or crafted one is hostile input. An accepted manifest
 * must format and parse back to the same thing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "streaming/layer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        LayerManifest m;
        char *err = NULL;
        int r = layer_manifest_parse((const char *)data, size, &m, &err);
        if (r == 0) {
                if (err || !layer_name_valid(m.name) || strlen(m.sha256) != LAYER_SHA256_HEX)
                        abort();
                char *s = layer_manifest_format(&m);
                LayerManifest again;
                char *err2 = NULL;
                if (layer_manifest_parse(s, strlen(s), &again, &err2) < 0 || strcmp(again.name, m.name) != 0 ||
                    again.packages.n != m.packages.n || again.size != m.size)
                        abort();
                layer_manifest_free(&again);
                free(s);
                layer_manifest_free(&m);
        } else if (!err || r != -EBADMSG || strlen(err) > 512) {
                abort();
        }
        free(err);
        return 0;
}
