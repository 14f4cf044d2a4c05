/* slate-session codec choice: the client's negotiated capabilities pick one row of the encoder
 * table, and SLATE_SESSION_CODEC can only pick a codec the client decodes. The settings below
 * are what slate-session logged for real clients (xfreerdp 2.11, tests/e2e/rdp-client). */
#include <time.h>
#include <criterion/criterion.h>
#include <freerdp/codec/rfx.h>
#include <freerdp/primitives.h>
#include <freerdp/settings.h>
#include "rdp/encoder.h"

#define MULTIFRAG_XFREERDP 4276224      /* xfreerdp /size:1280x800 */

static rdpSettings *client(bool surface_commands, bool rfx, bool nsc, uint32_t multifrag)
{
        rdpSettings *st = freerdp_settings_new(FREERDP_SETTINGS_SERVER_MODE);
        cr_assert_not_null(st);
        cr_assert(freerdp_settings_set_bool(st, FreeRDP_SurfaceCommandsEnabled, surface_commands));
        cr_assert(freerdp_settings_set_bool(st, FreeRDP_RemoteFxCodec, rfx));
        cr_assert(freerdp_settings_set_bool(st, FreeRDP_NSCodec, nsc));
        cr_assert(freerdp_settings_set_uint32(st, FreeRDP_MultifragMaxRequestSize, multifrag));
        return st;
}

static void expect(rdpSettings *st, const char *force, const char *codec)
{
        cr_assert_str_eq(encoder_codec_choose(st, NULL, force), codec, "force=%s", force ? force : "(none)");
}

Test(rdp_encoder, default_xfreerdp_gets_remotefx)
{
        rdpSettings *st = client(true, true, false, MULTIFRAG_XFREERDP);
        expect(st, NULL, "remotefx");
        freerdp_settings_free(st);
}

Test(rdp_encoder, remotefx_wins_over_nscodec)
{
        rdpSettings *st = client(true, true, true, MULTIFRAG_XFREERDP);      /* xfreerdp /nsc */
        expect(st, NULL, "remotefx");
        freerdp_settings_free(st);
}

Test(rdp_encoder, nscodec_when_remotefx_is_not_offered)
{
        rdpSettings *st = client(true, false, true, MULTIFRAG_XFREERDP);     /* xfreerdp -gfx /nsc */
        expect(st, NULL, "nscodec");
        freerdp_settings_free(st);
}

Test(rdp_encoder, planar_for_a_bitmap_only_client)
{
        rdpSettings *st = client(true, false, false, MULTIFRAG_XFREERDP);    /* rdp-client --codec legacy */
        expect(st, NULL, "planar");
        freerdp_settings_free(st);
        st = client(false, true, true, MULTIFRAG_XFREERDP);                  /* no surface commands */
        expect(st, NULL, "planar");
        freerdp_settings_free(st);
}

Test(rdp_encoder, remotefx_needs_multifragment_room_unless_asked_for)
{
        rdpSettings *st = client(true, true, false, 0);
        expect(st, NULL, "planar");
        expect(st, "rfx", "remotefx");
        freerdp_settings_free(st);
        st = client(true, true, true, 64 * 1024 - 1);
        expect(st, NULL, "nscodec");
        freerdp_settings_free(st);
        st = client(true, true, true, 64 * 1024);
        expect(st, NULL, "remotefx");
        freerdp_settings_free(st);
}

Test(rdp_encoder, a_forced_codec_must_be_offered)
{
        rdpSettings *st = client(true, true, false, MULTIFRAG_XFREERDP);
        expect(st, "planar", "planar");
        expect(st, "nsc", "remotefx");
        expect(st, "rfx", "remotefx");
        expect(st, "bogus", "remotefx");
        freerdp_settings_free(st);
        st = client(true, false, false, MULTIFRAG_XFREERDP);
        expect(st, "rfx", "planar");
        expect(st, "nsc", "planar");
        freerdp_settings_free(st);
        st = client(true, false, true, MULTIFRAG_XFREERDP);
        expect(st, "nsc", "nscodec");
        expect(st, "planar", "planar");
        freerdp_settings_free(st);
}

/* FreeRDP 2 times its pixel primitives for 2 × 150 ms (its own clock) at the first codec context
 * unless told which to use; slate-session pays that once per connection, on the first frame. */
Test(rdp_encoder, first_codec_context_skips_the_primitives_timing)
{
        encoder_setup_once();
        cr_assert_eq(primitives_get_hints(), PRIMITIVES_ONLY_CPU);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        RFX_CONTEXT *rfx = rfx_context_new(TRUE);
        clock_gettime(CLOCK_MONOTONIC, &b);
        cr_assert_not_null(rfx);
        double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
        cr_assert_lt(ms, 300.0, "rfx_context_new took %.0f ms: the primitives were timed", ms);
        rfx_context_free(rfx);
}
