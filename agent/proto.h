/* Wire protocol between slated and slate-agent (virtio-serial), shared by both sides.
 * Frame: u16 magic "SL", u8 version, u8 type, u32 payload length (big-endian), payload.
 * The length is checked against AGENT_FRAME_MAX before any allocation. The guest is hostile:
 * the broker decodes every payload through common/reader and enforces a permit table. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/frame.h"
#include "common/reader.h"

#define AGENT_MAGIC 0x534c          /* "SL" */
#define AGENT_PROTO_VERSION 1
#define AGENT_HEADER_SIZE FRAME_HEADER_SIZE
/* Largest payload either side accepts; session messages (user, apps) fit easily. */
#define AGENT_FRAME_MAX (64u * 1024)
#define AGENT_STRING_MAX 255
#define AGENT_PORT_NAME "org.slate.agent.0"

typedef enum AgentMsgType {
        AGENT_MSG_HELLO = 1,        /* agent → host: version, capabilities, boot id */
        AGENT_MSG_READY = 2,        /* agent → host: desktop can take a session */
        AGENT_MSG_HEARTBEAT = 3,    /* host → agent ping; agent echoes seq back. The agent also sends
                                     * seq 0 on its own each second while mounting or unmounting a
                                     * session's disks holds its loop (agent/disks.c) */
        AGENT_MSG_SESSION_START = 4, /* host → agent: a user logged on to this desktop */
        AGENT_MSG_SESSION_STOP = 5, /* host → agent: end the session (logout, timeout, admin) */
        AGENT_MSG_SESSION_STATE = 6, /* agent → host: session started / stopped / user logged out */
        AGENT_MSG_IDENTITY = 7,     /* host → agent, once after READY: this desktop's own identity
                                     * (a clone shares everything with its template until then) */
        AGENT_MSG_IDENTIFIED = 8,   /* agent → host: the identity applied, as the guest now sees it */
        _AGENT_MSG_MAX,
} AgentMsgType;

/* Capability bits announced in HELLO. */
enum {
        AGENT_CAP_SESSION = 1u << 0,
        AGENT_CAP_CANARY = 1u << 1, /* test guest: writes a canary derived from boot id */
        AGENT_CAP_DISKS = 1u << 2,  /* mounts the disks listed in SESSION_START (agent/disks.c) */
        AGENT_CAP_DISK_SLOTS = 1u << 3, /* ...as extents of the slot disks (offset, length): the
                                         * format slated sends; an agent without it gets no disks */
        AGENT_CAP_USABLE = 1u << 4, /* sends SESSION_STATE USABLE when the user's session is ready
                                     * (the test desktop; a session script with its ready hook).
                                     * Without it slated takes the first frame as usable */
        AGENT_CAP_IDENTITY = 1u << 5, /* applies IDENTITY: a desktop can be a clone of a template */
};

/* IDENTITY: the guest's machine-id, hostname and boot identity, a token only this desktop's
 * agent holds, bytes for the kernel's RNG (RNDADDENTROPY, then RNDRESEEDCRNG) and the host's
 * clock. boot_id empty: keep the kernel's (a cold boot has its own); else it replaces the boot id
 * the agent reports (and, with AGENT_CAP_CANARY, the canary is written anew from it). */
#define AGENT_TOKEN_SIZE 32
#define AGENT_ENTROPY_SIZE 32
#define AGENT_RNG_SAMPLE_SIZE 16
#define AGENT_MACHINE_ID_LEN 32     /* lower-case hex, as /etc/machine-id */
#define AGENT_HOSTNAME_MAX 63
#define AGENT_BOOT_ID_MAX 36        /* a UUID, as /proc/sys/kernel/random/boot_id */
enum {
        AGENT_IDENTITY_RESEEDED = 1u << 0,      /* RNDADDENTROPY + RNDRESEEDCRNG succeeded */
        AGENT_IDENTITY_CLOCK = 1u << 1,         /* the wall clock was set */
        AGENT_IDENTITY_CANARY = 1u << 2,        /* the canary was written anew */
};

/* The disks of a session: each an extent (offset, length) of a slot disk the VM has had since
 * boot (virtio-blk, named by its serial), which the host pointed at the session's images just
 * before SESSION_START (broker/hv_qemu_disk.c). The agent flushes the slot's page cache, maps
 * the extent with a loop device and mounts that. SESSION_START carries them only when there are
 * some: u8 count, then per disk u8 kind, string serial, string name, u64 offset, u64 length (so
 * a host without disks sends the original format). Layers come top-most first. */
#define AGENT_DISKS_MAX 8           /* a profile and up to 7 layers */
#define AGENT_DISK_ALIGN 4096       /* offsets and lengths: multiples of this, length > 0 */
#define AGENT_DISK_SERIAL_MAX 20    /* virtio-blk's serial field (VIRTIO_BLK_ID_BYTES) */
#define AGENT_DISK_NAME_MAX 64      /* a layer's name: a directory under /run/slate/layers */
enum {
        AGENT_DISK_PROFILE = 1,     /* ext4, read-write, mounted on /home/USER; at most one */
        AGENT_DISK_LAYER = 2,       /* ext4, read-only, merged over /usr, /opt, /etc; needs a name */
};

typedef struct AgentDisk {
        uint8_t kind;               /* AGENT_DISK_* */
        char serial[AGENT_DISK_SERIAL_MAX + 1];     /* [A-Za-z0-9-], 1..20 chars */
        char name[AGENT_DISK_NAME_MAX + 1];         /* [A-Za-z0-9._+-], 0..64 chars */
        uint64_t offset, length;    /* the extent of the slot disk, bytes */
} AgentDisk;

enum {
        AGENT_SESSION_STARTED = 1,  /* the user's session is live on the console */
        AGENT_SESSION_STOPPED = 2,  /* answer to SESSION_STOP: flushed and ended */
        AGENT_SESSION_LOGOUT = 3,   /* the user logged out from inside the desktop */
        AGENT_SESSION_FAILED = 4,   /* the session could not be started */
        AGENT_SESSION_USABLE = 5,   /* the started session is usable (its desktop is drawn), not
                                     * merely started; once per session, only after STARTED */
};

typedef struct AgentMsg {
        AgentMsgType type;
        union {
                struct {
                        char agent_version[AGENT_STRING_MAX + 1];
                        uint32_t capabilities;
                        char boot_id[AGENT_STRING_MAX + 1];
                } hello;
                struct {
                        uint64_t seq;
                        uint64_t uptime_ms; /* agent side only; 0 from the host */
                } heartbeat;
                struct {
                        char user[AGENT_STRING_MAX + 1];
                        uint32_t uid;
                        uint16_t width, height;
                        uint8_t n_disks;    /* 0: none (nothing on the wire) */
                        AgentDisk disks[AGENT_DISKS_MAX];
                } session_start;
                struct {
                        char reason[AGENT_STRING_MAX + 1];
                } session_stop;
                struct {
                        uint8_t state;      /* AGENT_SESSION_* */
                        char detail[AGENT_STRING_MAX + 1];
                } session_state;
                struct {
                        char boot_id[AGENT_BOOT_ID_MAX + 1];        /* [0-9a-f-], may be empty */
                        char hostname[AGENT_HOSTNAME_MAX + 1];      /* [a-z0-9-], 1..63 */
                        char machine_id[AGENT_MACHINE_ID_LEN + 1];  /* 32 lower-case hex */
                        uint8_t token[AGENT_TOKEN_SIZE];
                        uint8_t entropy[AGENT_ENTROPY_SIZE];        /* host → agent; zero back */
                        uint64_t realtime_ms;                       /* host → agent: the host's clock */
                        uint8_t rng_sample[AGENT_RNG_SAMPLE_SIZE];  /* agent → host: getrandom() after the reseed */
                        uint8_t flags;                              /* agent → host: AGENT_IDENTITY_* */
                } identity;                 /* IDENTITY and IDENTIFIED */
        };
} AgentMsg;

/* The generic frame parser (common/frame.h) with the agent's magic and version. */
typedef FrameParser AgentParser;
typedef Frame AgentFrame;

void agent_parser_init(AgentParser *p, uint32_t max);
void agent_parser_free(AgentParser *p);
/* Consume bytes from data[0..len). Returns 1 with *ret set when a frame is complete
 * (*consumed says how much was used; call again with the rest), 0 when all was consumed
 * and more is needed, -EBADMSG on bad magic/version, -EMSGSIZE when over the limit.
 * After an error the parser must not be fed again. */
int agent_parser_feed(AgentParser *p, const uint8_t *data, size_t len, size_t *consumed, AgentFrame *ret);

/* Decode a complete frame into a message; -EBADMSG on a malformed or unknown payload. */
int agent_msg_decode(const AgentFrame *f, AgentMsg *ret);
/* Encode a message as one complete frame into w (header included). */
int agent_msg_encode(const AgentMsg *m, Writer *w);
const char *agent_msg_type_name(uint8_t type);
/* The disk list rules decode enforces (count, kinds, serial and name characters, one profile, a
 * name for every layer, aligned extents that do not overlap on one slot): 0 or -EBADMSG. The agent relies on them for the paths it builds. */
int agent_disks_check(const AgentDisk *disks, unsigned n);
