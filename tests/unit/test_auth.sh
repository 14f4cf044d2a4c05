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
EXPIRED=$B/tests/pam/pam_expired.so
[ -f "$EXPIRED" ] || { echo "FAIL: $EXPIRED not built (make tests/pam/pam_expired.so)" >&2; exit 1; }
printf 'alice:secret:slate\nbob:hunter2:slate\ncarol:pw:other-svc\ndave:pw4:slate\nerin:pw5:slate\nfrank:pw6:slate\n' >"$T/passdb"
for u in sess1 sess2 sess3 sess4; do echo "$u:pw:slate"; done >>"$T/passdb"
for u in otp1 otp2 otp3; do echo "$u:pw:slate-otp"; done >>"$T/passdb"
for u in gina hank; do echo "$u:old:slate"; done >>"$T/passdb"
mkdir "$T/state"
# The session stack runs a hook (pam_exec gives it PAM_TYPE=open_session/close_session) that
# appends "TYPE USER RHOST" to a log the tests read: proof of what was opened and closed.
printf '#!/bin/sh\necho "$PAM_TYPE $PAM_USER $PAM_RHOST" >>"%s/sessions.log"\n' "$T" >"$T/hook"
chmod 755 "$T/hook"
{
        echo "auth required $MOD/pam_matrix.so passdb=$T/passdb"
        echo "account required $MOD/pam_matrix.so passdb=$T/passdb"
        echo "account required $EXPIRED password_expired=dave password_expired=gina password_expired=hank account_expired=erin denied=frank state=$T/state"
        echo "password required $EXPIRED state=$T/state"
        echo "session required pam_exec.so $T/hook"
} >"$T/pam.d/slate"
# A second factor: the password, then a TOTP code from pam_oath (Debian's libpam-oath; codes
# from oathtool). Without them the tests that need them skip, saying so.
OATH=$(ls /usr/lib/*/security/pam_oath.so /lib/*/security/pam_oath.so 2>/dev/null | head -1 || true)
if [ -n "$OATH" ] && command -v oathtool >/dev/null; then
        KEY=3132333435363738393031323334353637383930
        for u in otp1 otp2 otp3; do echo "HOTP/T30/6 $u - $KEY"; done >"$T/oath.users"
        chmod 600 "$T/oath.users"
        {
                echo "auth required $MOD/pam_matrix.so passdb=$T/passdb"
                echo "auth required $OATH usersfile=$T/oath.users window=2 digits=6"
                echo "account required $MOD/pam_matrix.so passdb=$T/passdb"
        } >"$T/pam.d/slate-otp"
        export SLATE_OATH_KEY=$KEY
else
        echo "# pam_oath or oathtool missing (apt-get install libpam-oath oathtool): the one-time-code tests skip"
fi
for t in auth account password session; do echo "$t required pam_deny.so"; done >"$T/pam.d/other"
SLATE_PAM_STATE=$T/state SLATE_PAM_SESSIONS_LOG=$T/sessions.log LD_PRELOAD=$LIB PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d \
        "$B/tests/unit/test_auth" "$@"
