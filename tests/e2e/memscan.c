/* Whether a process's memory holds a private key (issue: hardening, "the key absent from a
 * pre-auth slate-session's memory"): reads every readable mapping of /proc/PID/mem and searches
 * for 32-byte pieces of the key's secrets, in both byte orders (OpenSSL's BIGNUMs keep little-
 * endian words, DER and PEM big-endian), and for a line of the key file's base64.
 *
 *   memscan PID KEY.pem     exit 0: none found; 1: found (printed); 2: error */
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PIECE 32

typedef struct Needle {
        char name[48];
        unsigned char b[64];
        size_t len;
} Needle;

static Needle needles[32];
static size_t n_needles;

static void add(const char *name, const unsigned char *b, size_t len)
{
        if (len < 16 || n_needles == sizeof needles / sizeof needles[0])
                return;
        Needle *n = &needles[n_needles++];
        snprintf(n->name, sizeof n->name, "%s", name);
        n->len = len > sizeof n->b ? sizeof n->b : len;
        memcpy(n->b, b, n->len);
}

static void add_bn(EVP_PKEY *k, const char *param)
{
        BIGNUM *bn = NULL;
        if (!EVP_PKEY_get_bn_param(k, param, &bn))
                return;
        unsigned char be[1024], le[1024];
        int len = BN_bn2bin(bn, be);
        BN_free(bn);
        if (len < PIECE * 2)
                return;
        for (int i = 0; i < len; i++)
                le[i] = be[len - 1 - i];
        char name[48];
        /* Pieces from the middle: clear of leading zeros and of word-alignment at the ends. */
        snprintf(name, sizeof name, "%s (big-endian)", param);
        add(name, be + len / 2, PIECE);
        snprintf(name, sizeof name, "%s (little-endian)", param);
        add(name, le + len / 2, PIECE);
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: memscan PID KEY.pem\n");
                return 2;
        }
        FILE *f = fopen(argv[2], "r");
        EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (!k) {
                fprintf(stderr, "memscan: cannot read the key %s\n", argv[2]);
                return 2;
        }
        rewind(f);
        char line[256];
        for (int i = 0; fgets(line, sizeof line, f); i++)
                if (i == 2 && strlen(line) > 40)
                        add("a line of the PEM file", (unsigned char *)line, 40);
        fclose(f);
        const char *params[] = { OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
                                 OSSL_PKEY_PARAM_PRIV_KEY };
        for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
                add_bn(k, params[i]);
        EVP_PKEY_free(k);
        if (n_needles < 2) {
                fprintf(stderr, "memscan: nothing to search for in %s\n", argv[2]);
                return 2;
        }

        char path[64];
        snprintf(path, sizeof path, "/proc/%s/maps", argv[1]);
        FILE *maps = fopen(path, "r");
        snprintf(path, sizeof path, "/proc/%s/mem", argv[1]);
        int mem = open(path, O_RDONLY | O_CLOEXEC);
        if (!maps || mem < 0) {
                fprintf(stderr, "memscan: cannot read process %s's memory\n", argv[1]);
                return 2;
        }
        size_t scanned = 0;
        int found = 0;
        while (fgets(line, sizeof line, maps)) {
                unsigned long lo, hi;
                char perms[8];
                if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || strstr(line, "[vvar]"))
                        continue;
                size_t len = hi - lo;
                unsigned char *buf = malloc(len);
                ssize_t got = buf ? pread(mem, buf, len, (off_t)lo) : -1;
                for (size_t i = 0; got > 0 && i < n_needles; i++)
                        if (memmem(buf, (size_t)got, needles[i].b, needles[i].len)) {
                                printf("found %s in %.*s", needles[i].name, (int)strcspn(line, "\n"), line);
                                printf("\n");
                                found = 1;
                        }
                if (got > 0)
                        scanned += (size_t)got;
                free(buf);
        }
        fclose(maps);
        close(mem);
        printf("memscan: %zu KiB of process %s searched for %zu pieces of the key: %s\n", scanned / 1024, argv[1],
               n_needles, found ? "found" : "none found");
        return found;
}
