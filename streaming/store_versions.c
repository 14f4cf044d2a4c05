/* The block store's version files (store.h): one per name and version, authenticated by an
 * HMAC of the store's key; listing, loading, writing. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "streaming/store_int.h"

bool store_name_ok(const char *name)
{
        return name && name[0] && name[0] != '.' && strlen(name) <= 64 && !strpbrk(name, "/\n");
}

char *store_version_path(Store *s, const char *name, int v)
{
        return xasprintf("%s/versions/%s/%08d.ver", s->dir, name, v);
}

int store_versions(Store *s, const char *name, int **ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        if (!store_name_ok(name))
                return -EINVAL;
        _cleanup_free_ char *dir = xasprintf("%s/versions/%s", s->dir, name);
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        struct dirent *de;
        int *v = NULL;
        size_t n = 0;
        while ((de = readdir(d))) {
                char *end;
                long x = strtol(de->d_name, &end, 10);
                if (x <= 0 || x > 99999999 || strcmp(end, ".ver") != 0)
                        continue;
                v = xrealloc(v, sizeof *v * (n + 1));
                v[n++] = (int)x;
        }
        closedir(d);
        for (size_t i = 1; i < n; i++)      /* few versions: insertion sort */
                for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        int t = v[j];
                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
        *ret = v;
        *ret_n = n;
        return 0;
}

int store_names(Store *s, char ***ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        _cleanup_free_ char *vdir = xasprintf("%s/versions", s->dir);
        DIR *d = opendir(vdir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        struct dirent *de;
        char **v = NULL;
        size_t n = 0;
        while ((de = readdir(d))) {
                if (!store_name_ok(de->d_name))
                        continue;
                v = xrealloc(v, sizeof *v * (n + 1));
                v[n++] = xstrdup(de->d_name);
        }
        closedir(d);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Loads and authenticates a version file: *buf owns the bytes h points into. */
int store_version_load(Store *s, const char *name, int v, uint8_t **buf, VersionHeader *h)
{
        if (!store_name_ok(name) || v <= 0)
                return -EINVAL;
        _cleanup_free_ char *path = store_version_path(s, name, v);
        char *data = NULL;
        size_t len;
        int r = read_file_max(path, 64 + (size_t)VERSION_MAPS_MAX * ID_LEN, &data, &len);
        if (r < 0)
                return r;
        uint8_t mac[ID_LEN];
        if (version_parse((uint8_t *)data, len, h) < 0 || store_hmac(s->k_mac, data, h->mac_off, mac) < 0 ||
            CRYPTO_memcmp(mac, h->mac, ID_LEN) != 0) {
                free(data);
                return -EBADMSG;
        }
        *buf = (uint8_t *)data;
        return 0;
}

int store_version_info(Store *s, const char *name, int version, uint64_t *ret_size, uint64_t *ret_created)
{
        uint8_t *buf = NULL;
        VersionHeader h;
        int r = store_version_load(s, name, version, &buf, &h);
        if (r == 0) {
                *ret_size = h.disk_size;
                if (ret_created)
                        *ret_created = h.created;
        }
        free(buf);
        return r;
}

int store_version_store(Store *s, const char *name, int v, uint64_t size, unsigned map_blocks, const uint8_t *maps,
                         uint32_t n_maps, char **ret_error)
{
        VersionHeader h = { .disk_size = size, .block_size = STORE_BLOCK, .map_blocks = map_blocks,
                            .created = s->fixed_time ? s->fixed_time : (uint64_t)time(NULL), .n_maps = n_maps,
                            .maps = maps };
        Writer w;
        writer_init(&w, 128 + (size_t)n_maps * ID_LEN);
        version_write(&w, &h);
        uint8_t mac[ID_LEN];
        int r = w.error ? -EFBIG : store_hmac(s->k_mac, w.data, w.len, mac);
        writer_bytes(&w, mac, ID_LEN);
        _cleanup_free_ char *dir = xasprintf("%s/versions/%s", s->dir, name), *path = store_version_path(s, name, v);
        if (r == 0)
                r = mkdir_p(dir, 0700);
        if (r == 0)
                r = write_file_atomic(path, w.data, w.len, 0600);
        if (r == 0)
                r = store_fsync_dir(dir);
        writer_free(&w);
        if (r < 0)
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
        return r;
}

