/* Fuzz target: the check of `qemu-img info --output=json` for a published image. A published
 * file chooses strings in that reply (backing file, data file, vmdk extent names), so the reply
 * is hostile input. The input's length stands in for the file size. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imaging/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        ImageInfo info;
        char *err = NULL;
        int r = image_info_check((const char *)data, size, "/srv/images/disk.img", size, &info, &err);
        if (r == 0) {
                /* Accepted: a supported format, a positive size, no error message. */
                if (err || info.virtual_size == 0 || info.virtual_size > INT64_MAX || info.file_size != size ||
                    !memchr(info.format, '\0', sizeof info.format))
                        abort();
        } else if (!err || (r != -EBADMSG && r != -EINVAL)) {
                abort();
        } else {
                /* A refusal names at most a short piece of the hostile name, with no control bytes. */
                if (strlen(err) > 1024)
                        abort();
                for (const char *p = err; *p; p++)
                        if ((unsigned char)*p < 0x20)
                                abort();
        }
        free(err);
        return 0;
}
