/* Fuzz target: what slated agrees to sign for a session (common/keysign.c keysign_check), the one
 * parser of session bytes added for the keyless TLS key. The first byte picks the key (bit 7:
 * EC, else RSA-2048) and the kind of request; the rest is the request. */
#include <stdint.h>
#include <stdlib.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "common/keysign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static EVP_PKEY *rsa, *ec;
        if (!rsa) {
                rsa = EVP_RSA_gen(2048);
                ec = EVP_EC_gen("P-256");
                if (!rsa || !ec)
                        abort();
        }
        if (size < 1)
                return 0;
        keysign_check(data[0] & 0x80 ? ec : rsa, data[0] & 0x7f, data + 1, size - 1);
        return 0;
}
