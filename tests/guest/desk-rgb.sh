# The colour the tiny guest's test desktop paints a user's session with, for the tests and the
# benchmarks that check it on the client's screen (sourced; bash). Must stay tests/guest/desk.c's
# desk_user_rgb: FNV-1a 32-bit of the name, each channel 0x40 + (c & 0x7f) (never black or white).

# desk_user_rgb USER: RRGGBB
desk_user_rgb() {
        local h=2166136261 c i
        for ((i = 0; i < ${#1}; i++)); do
                printf -v c '%d' "'${1:i:1}"
                h=$(( ((h ^ c) * 16777619) & 0xffffffff ))
        done
        printf '%02x%02x%02x' $((0x40 + ((h >> 16) & 0x7f))) $((0x40 + ((h >> 8) & 0x7f))) $((0x40 + (h & 0x7f)))
}
