/* Which TLS versions and cipher suites an RDP listener accepts (issue: hardening). nmap's
 * ssl-enum-ciphers does not get past RDP's X.224 prelude, so this speaks it first: a Connection
 * Request asking for TLS (RDP_NEG_REQ, PROTOCOL_SSL), the Connection Confirm, then one TLS
 * handshake per version and per suite, the client offering exactly that one and willing to
 * accept anything (security level 0). Prints "VERSION SUITE accepted|refused" lines.
 *
 *   tls-enum HOST PORT
 *   tls-enum HOST PORT --hold SECONDS   one default handshake, then hold the connection open
 *                                        (prints "held" once the handshake is done) */
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *host, *port;

/* A TCP connection through the X.224 exchange, or -1. */
static int rdp_connect(void)
{
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
        if (getaddrinfo(host, port, &hints, &ai) != 0)
                return -1;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = { .tv_sec = 10 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                freeaddrinfo(ai);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        freeaddrinfo(ai);
        static const unsigned char cr[19] = { 0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00,
                                              0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00 };
        unsigned char cc[19];
        size_t got = 0;
        if (write(fd, cr, sizeof cr) != (ssize_t)sizeof cr)
                goto bad;
        while (got < sizeof cc) {
                ssize_t n = read(fd, cc + got, sizeof cc - got);
                if (n <= 0)
                        goto bad;
                got += (size_t)n;
        }
        /* TPKT, X.224 Connection Confirm, RDP_NEG_RSP selecting PROTOCOL_SSL. */
        if (cc[0] != 3 || cc[5] != 0xd0 || cc[11] != 0x02 || cc[15] != 0x01)
                goto bad;
        return fd;
bad:
        close(fd);
        return -1;
}

/* One handshake: 1 accepted, 0 refused, -1 no X.224 answer. */
static int try(int version, const char *ciphers, const char *suites, char *got, size_t cap)
{
        int fd = rdp_connect();
        if (fd < 0)
                return -1;
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
        int ok = 1;
        if (ciphers)
                ok = SSL_CTX_set_cipher_list(ctx, ciphers);
        if (suites)
                ok = ok && SSL_CTX_set_ciphersuites(ctx, suites);
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        int r = ok && SSL_connect(ssl) == 1;
        if (r && got)
                snprintf(got, cap, "%s", SSL_get_cipher_name(ssl));
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        close(fd);
        ERR_clear_error();
        return r;
}

/* A session held after its TLS handshake, before credentials: what tests/e2e/tls.sh searches
 * for the server key. */
static int hold(int seconds)
{
        int fd = rdp_connect();
        if (fd < 0)
                return 1;
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1)
                return 1;
        printf("held %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
        fflush(stdout);
        sleep((unsigned)seconds);
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        close(fd);
        return 0;
}

static void say(const char *v, const char *suite, int r)
{
        printf("%s %s %s\n", v, suite, r > 0 ? "accepted" : r == 0 ? "refused" : "no-x224");
        fflush(stdout);
}

/* Each suite's handshake in a child, WORKERS at a time: one handshake costs the server a session
 * process start, and the TLS 1.2 list is long. Lines come out whole, in any order. */
#define WORKERS 6
static int running;

static void reap(int keep)
{
        while (running > keep && wait(NULL) > 0)
                running--;
}

static void say_try(const char *v, const char *suite, int version, const char *ciphers, const char *suites)
{
        reap(WORKERS - 1);
        pid_t pid = fork();
        if (pid == 0) {
                say(v, suite, try(version, ciphers, suites, NULL, 0));
                _exit(0);
        }
        if (pid > 0)
                running++;
        else
                say(v, suite, try(version, ciphers, suites, NULL, 0));
}

int main(int argc, char **argv)
{
        if (argc != 3 && !(argc == 5 && strcmp(argv[3], "--hold") == 0)) {
                fprintf(stderr, "usage: tls-enum HOST PORT [--hold SECONDS]\n");
                return 2;
        }
        host = argv[1];
        port = argv[2];
        if (argc == 5)
                return hold(atoi(argv[4]));
        static const struct { int v; const char *name; } versions[] = {
                { TLS1_VERSION, "TLSv1.0" }, { TLS1_1_VERSION, "TLSv1.1" },
                { TLS1_2_VERSION, "TLSv1.2" }, { TLS1_3_VERSION, "TLSv1.3" },
        };
        char got[128];
        for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
                int v = versions[i].v;
                got[0] = 0;
                int r = try(v, v == TLS1_3_VERSION ? NULL : "ALL:COMPLEMENTOFALL:@SECLEVEL=0", NULL, got, sizeof got);
                say(versions[i].name, r > 0 ? got : "any", r);
        }
        /* Every TLS 1.2 suite this OpenSSL knows, one at a time. */
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0");
        SSL *ssl = SSL_new(ctx);
        STACK_OF(SSL_CIPHER) *all = SSL_get_ciphers(ssl);
        for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
                const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
                const char *name = SSL_CIPHER_get_name(c);
                if (strncmp(SSL_CIPHER_get_version(c), "TLSv1.3", 7) == 0)
                        continue;
                char list[160];
                snprintf(list, sizeof list, "%s:@SECLEVEL=0", name);
                say_try("TLSv1.2", name, TLS1_2_VERSION, list, NULL);
        }
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        static const char *const tls13[] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                             "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                                             "TLS_AES_128_CCM_8_SHA256" };
        for (size_t i = 0; i < sizeof tls13 / sizeof tls13[0]; i++)
                say_try("TLSv1.3", tls13[i], TLS1_3_VERSION, NULL, tls13[i]);
        reap(0);
        return 0;
}
