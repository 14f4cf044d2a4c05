/* What slate-session sends the client and what it learns back: its own screens until the
 * desktop is usable, then the console's changes through the encoder (and its lossless pass);
 * the acknowledgements that pace frames and mark the first and the usable frame for slated. */
#include <errno.h>
#include <stdio.h>
#include <freerdp/error.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "rdp/rdpconn.h"
#include "rdp/rdpconn_int.h"

/* The first frame the client took, whatever it showed (the progress or logon screen, most often):
 * slated's timeline keeps it apart from usable. slated takes it once the desktop is attached. */
void rdpconn_report_first_frame(RdpConn *s)
{
        if (!s->first_acked || s->first_reported || s->phase != PH_RUNNING)
                return;
        IpcMsg m = { .type = IPC_FIRST_FRAME };
        m.first_frame.ms_since_accept = s->first_acked_ms;
        m.first_frame.width = s->first_w;
        m.first_frame.height = s->first_h;
        s->first_reported = true;
        log_info("first frame %ux%u on the client after %u ms", s->first_w, s->first_h, s->first_acked_ms);
        if (ipc_send(s->ipc_fd, &m, -1) < 0)
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
}

static void first_frame_taken(RdpConn *s)
{
        if (s->first_acked)
                return;
        s->first_acked = true;
        s->first_acked_ms = (uint32_t)(now_ms() - s->t0);
        rdpconn_report_first_frame(s);
}

/* The desktop reached the client: the first whole console frame once usable. */
static void usable_frame_taken(RdpConn *s)
{
        if (s->usable_reported)
                return;
        s->usable_reported = true;
        log_info("usable desktop on the client after %llu ms", (unsigned long long)(now_ms() - s->t0));
        rdpconn_send_phase(s, "usable-frame");
}

/* Acks come in order: one acknowledges every frame of its kind before it. */
static bool ack_covers(uint32_t want, uint32_t got)
{
        return (want >= SCREENS_ID_BASE) == (got >= SCREENS_ID_BASE) && got >= want;
}

void rdpconn_frame_ack(void *ud, uint32_t id)
{
        RdpConn *s = ud;
        if (id >= SCREENS_ID_BASE)
                screens_frame_ack(s->screens, id);
        else if (s->console)
                console_frame_ack(s->console, id);
        if (s->first_sent && ack_covers(s->first_frame_id, id))
                first_frame_taken(s);
        if (s->usable_sent && ack_covers(s->usable_frame_id, id))
                usable_frame_taken(s);
}

/* Whether the console's frames go to the client now. Until slated's usable step lands everywhere:
 * with no progress from slated at all, the console's first frame that is not all black counts as
 * usable. */
static bool console_wanted(RdpConn *s)
{
        if (s->phase != PH_RUNNING || s->failing || !s->console || !console_has_content(s->console))
                return false;
        if (!s->usable && !s->step_seen) {
                /* A guest console still all black is not a desktop: the progress screen stays,
                 * for BLACK_WAIT_MS at most (a guest may well draw black). */
                if (now_ms() < s->attached_at + BLACK_WAIT_MS && console_is_black(s->console))
                        return false;
                log_info("no progress from slated: the desktop's first frame counts as usable");
                s->usable = true;
        }
        /* Usable, but the console has not brought the guest's picture yet (its first update can
         * come after slated's word on a busy host): the progress screen stays, BLACK_WAIT_MS at most. */
        if (s->usable && !s->usable_sent && s->usable_at && now_ms() < s->usable_at + BLACK_WAIT_MS &&
            console_is_black(s->console))
                return false;
        return s->usable;
}

static void frame_sent(RdpConn *s, uint32_t id, bool usable_candidate)
{
        if (!s->first_sent) {
                s->first_sent = true;
                s->first_frame_id = id;
                s->first_w = s->enc_w;
                s->first_h = s->enc_h;
                if (!encoder_has_frame_acks(s->enc))
                        first_frame_taken(s);
        }
        if (usable_candidate && !s->usable_sent) {
                s->usable_sent = true;
                s->usable_frame_id = id;
                if (!encoder_has_frame_acks(s->enc))
                        usable_frame_taken(s);
        }
}

/* An encoder for the client's current size (the screen's frames and the console's share it). */
static int encoder_for(RdpConn *s, uint32_t W, uint32_t H, bool *ret_new)
{
        *ret_new = false;
        if (s->enc && s->enc_w == W && s->enc_h == H)
                return 0;
        s->enc = encoder_free(s->enc);
        int r = encoder_new(peer_context(s->peer), peer_gfx(s->peer), W, H, s->codec_pref, &s->enc);
        if (r < 0)
                return r;
        s->enc_w = W;
        s->enc_h = H;
        *ret_new = true;
        return 0;
}

/* The screen slate-session draws itself, at the client's size, while there is no usable desktop:
 * only when its view changed, only the rects that changed. */
static int pump_screen(RdpConn *s)
{
        if (!screens_pending(s->screens) || !peer_is_active(s->peer) || s->suppressed)
                return 0;
        uint32_t pw, ph;
        peer_size(s->peer, &pw, &ph);
        bool fresh;
        int r = encoder_for(s, pw, ph, &fresh);
        if (r < 0)
                return r;
        if (fresh)
                screens_frame_restart(s->screens);
        ScreensFrame f;
        if ((r = screens_frame_next(s->screens, pw, ph, encoder_has_frame_acks(s->enc), &f)) <= 0)
                return r;
        EncoderStats st = { 0 };
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, SEND_STALL_MS);
        r = encoder_send_frame(s->enc, f.fb, f.stride, f.rects, f.n, f.id, &st);
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, 0);
        if (r < 0)
                return r;
        log_debug("screen frame %u: %zu rects, %llu bytes", f.id - SCREENS_ID_BASE, f.n, (unsigned long long)st.bytes);
        frame_sent(s, f.id, false);
        return 0;
}

/* Nothing new on the console: what went lossy and stayed still goes again, exactly. */
static int pump_refine(RdpConn *s, const uint8_t *fb, uint32_t stride)
{
        uint32_t id;
        if (encoder_refine_wait(s->enc) != 0 || !(id = console_frame_extra(s->console)))
                return 0;
        EncoderStats st = { 0 };
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, SEND_STALL_MS);
        int r = encoder_refine(s->enc, fb, stride, id, &st);
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, 0);
        log_debug("frame %u: lossless pass, %llu bytes in %u PDUs", id, (unsigned long long)st.bytes, st.pdus);
        return r;
}

int rdpconn_pump_frame(RdpConn *s)
{
        if (!console_wanted(s)) {
                s->showing_console = false;
                return pump_screen(s);
        }
        if (!s->showing_console) {
                /* From the screen to the desktop: a fresh encoder, so the console's next frame is full. */
                s->showing_console = true;
                s->enc = encoder_free(s->enc);
                s->enc_w = s->enc_h = 0;
        }
        if (!peer_is_active(s->peer) || s->suppressed)
                return 0;
        uint32_t stride, fw, fh, pw, ph;
        const uint8_t *fb = console_framebuffer(s->console, &stride, &fw, &fh);
        peer_size(s->peer, &pw, &ph);

        /* The client's desktop follows the guest console; try once per console size. */
        if ((fw != pw || fh != ph) && (s->resize_tried_w != fw || s->resize_tried_h != fh)) {
                s->resize_tried_w = fw;
                s->resize_tried_h = fh;
                int r = peer_resize(s->peer, fw, fh);
                s->cropped = r == -ENOTSUP;
                if (r == -ENOTSUP)
                        log_warn("client cannot resize its desktop: showing %ux%u of the %ux%u console", MIN(pw, fw),
                                 MIN(ph, fh), fw, fh);
                else if (r < 0)
                        return r;
                if (!peer_is_active(s->peer))
                        return 0;
                peer_size(s->peer, &pw, &ph);
        }
        uint32_t W = MIN(fw, pw), H = MIN(fh, ph);
        bool fresh;
        int er = encoder_for(s, W, H, &fresh);
        if (er < 0)
                return er;
        if (fresh)
                console_frame_restart(s->console, encoder_has_frame_acks(s->enc));
        ConsoleFrame f;
        if (!console_frame_next(s->console, W, H, &f))
                return pump_refine(s, fb, stride);

        uint32_t id = f.id;
        EncoderStats st = { 0 };
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, SEND_STALL_MS);
        int r = encoder_send_frame(s->enc, fb, stride, f.rects, f.n, id, &st);
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, 0);
        if (r < 0)
                return r;
        console_frame_sent(s->console, &f);
        if (f.full) {
                s->full_frames++;
                s->full_stats.bytes += st.bytes;
                s->full_stats.cpu_us += st.cpu_us;
                s->full_stats.encode_us += st.encode_us;
                s->full_stats.send_us += st.send_us;
                log_info("frame %u: full %ux%u %s: %llu bytes in %u PDUs, encode %.1f ms (cpu %.1f ms), send %.1f ms",
                         id, W, H, encoder_codec(s->enc), (unsigned long long)st.bytes, st.pdus,
                         st.encode_us / 1000.0, st.cpu_us / 1000.0, st.send_us / 1000.0);
                /* The desktop reached the user when the whole guest screen (not a crop) did. */
                frame_sent(s, id, (W == fw && H == fh) || s->cropped);
                if (s->usable_sent && s->bench_left > 0) {
                        s->bench_left--;
                        console_refresh(s->console);
                }
        } else {
                log_debug("frame %u: %zu rects, %llu bytes, encode %.2f ms", id, f.n, (unsigned long long)st.bytes,
                          st.encode_us / 1000.0);
        }
        return 0;
}
