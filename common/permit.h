/* Permit tables (after OpenSSH's monitor): for each state of a connection, the message types the
 * peer may send in it. One lookup for every privileged boundary, so a type can never be allowed
 * by accident of a second, differently written loop. It must never permit message type 0. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PERMIT_TYPES_MAX 8

typedef struct PermitRow {
        int state;
        uint8_t types[PERMIT_TYPES_MAX];        /* the first 0 ends the list */
} PermitRow;

/* Whether a peer in state may send type, by the first row for that state in t[0..n). */
bool permit_allows(const PermitRow *t, size_t n, int state, uint8_t type);
