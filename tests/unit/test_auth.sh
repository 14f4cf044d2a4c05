#!/usr/bin/env bash
# Runs test_auth under pam_wrapper + pam_matrix: the real PAM library and stack, with a private
# service dir and password file (research: pam-testing.md). Skips (77) without libpam-wrapper.
set -eu
B=${SLATE_BUILDDIR:?}
MOD=$(pkg-config --variable=modules pam_wrapper 2>/dev/null || true)
LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -1 || true)
if [ -z "$MOD" ] || [ ! -f "$MOD/pam_matrix.so" ] || [ -z "$LIB" ]; then
        echo "SKIP: pam_wrapper/pam_matrix not installed (apt-get install libpam-wrapper)"; exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
mkdir "$T/pam.d"
printf 'alice:secret:slate\nbob:hunter2:slate\ncarol:pw:other-svc\n' >"$T/passdb"
for t in auth account; do echo "$t required $MOD/pam_matrix.so passdb=$T/passdb"; done >"$T/pam.d/slate"
for t in auth account password session; do echo "$t required pam_deny.so"; done >"$T/pam.d/other"
LD_PRELOAD=$LIB PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d "$B/tests/unit/test_auth" "$@"
