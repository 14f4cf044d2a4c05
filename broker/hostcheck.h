/* Checks of the host slated runs on, which change nothing: a swap area in clear would keep guest
 * plaintext past crypto-erase (docs/security.md, "Swap and crypto-erase"). */
#pragma once

/* The swap areas listed in swaps (the text of /proc/swaps) that are not encrypted: neither zram
 * nor on a dm-crypt device (directly, or below LVM or another device-mapper layer), looked up
 * under sysfs (normally "/sys"). *ret is a ", "-separated list, or NULL when there is none. */
int hostcheck_plain_swap(const char *swaps, const char *sysfs, char **ret);
/* Reads /proc/swaps and logs one warning naming the plain swap areas, if any. */
void hostcheck_warn_swap(void);
