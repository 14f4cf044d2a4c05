/* Puts slate-agent into a golden image: the host's static binary at AGENT_GUEST_PATH and a
 * service that keeps it running — a systemd unit (enabled by its wants link) or, without
 * systemd, /etc/init.d/slate-agent started from /etc/rc.local and the sysv runlevels. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/agent_install.h"

static const char unit[] =
        "# Installed by Slate image publishing: the guest agent slated talks to over virtio-serial.\n"
        "[Unit]\n"
        "Description=Slate guest agent\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        "ExecStart=" AGENT_GUEST_PATH " --session-script " AGENT_GUEST_SESSION "\n"
        "Restart=always\n"
        "RestartSec=1\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n";

/* Without systemd: a respawn loop in the background; flags from /etc/default/slate-agent
 * (SLATE_AGENT_ARGS) win over the default. */
static const char initscript[] =
        "#!/bin/sh\n"
        "### BEGIN INIT INFO\n"
        "# Provides:          slate-agent\n"
        "# Required-Start:    $local_fs\n"
        "# Required-Stop:     $local_fs\n"
        "# Default-Start:     2 3 4 5\n"
        "# Default-Stop:      0 1 6\n"
        "# Short-Description: Slate guest agent\n"
        "### END INIT INFO\n"
        "# Installed by Slate image publishing.\n"
        "AGENT=" AGENT_GUEST_PATH "\n"
        "SLATE_AGENT_ARGS=\n"
        "[ -x " AGENT_GUEST_SESSION " ] && SLATE_AGENT_ARGS=\"--session-script " AGENT_GUEST_SESSION "\"\n"
        "[ -r /etc/default/slate-agent ] && . /etc/default/slate-agent\n"
        "PIDFILE=/var/run/slate-agent.pid\n"
        "[ -d /var/run ] || PIDFILE=/tmp/slate-agent.pid\n"
        "case \"$1\" in\n"
        "start)\n"
        "        [ -x \"$AGENT\" ] || exit 0\n"
        "        (\n"
        "                trap 'kill $child 2>/dev/null; exit 0' TERM INT\n"
        "                while :; do\n"
        "                        $AGENT $SLATE_AGENT_ARGS &\n"
        "                        child=$!\n"
        "                        wait $child\n"
        "                        echo \"slate-agent exited ($?), restarting\"\n"
        "                        sleep 1\n"
        "                done\n"
        "        ) &\n"
        "        echo $! >\"$PIDFILE\"\n"
        "        ;;\n"
        "stop)\n"
        "        [ -r \"$PIDFILE\" ] && kill \"$(cat \"$PIDFILE\")\" 2>/dev/null\n"
        "        rm -f \"$PIDFILE\"\n"
        "        ;;\n"
        "restart)\n"
        "        \"$0\" stop; \"$0\" start\n"
        "        ;;\n"
        "*)\n"
        "        echo \"usage: $0 start|stop|restart\" >&2\n"
        "        exit 1\n"
        "        ;;\n"
        "esac\n";

#define RC_LOCAL_HOOK "[ -x /etc/init.d/slate-agent ] && /etc/init.d/slate-agent start # slate-agent\n"
/* rc.local is a shell script of a few lines; a big one is left as it is. */
#define RC_LOCAL_MAX (256u << 10)

static int write_file(guestfs_h *g, const char *path, const char *content, size_t len, int mode, char **ret_error)
{
        /* A symlink here could point the write anywhere in the image: replace it. */
        if (guestfs_is_symlink(g, path) > 0 && guestfs_rm(g, path) < 0)
                return gfs_fail(g, ret_error, "agent: replacing the symlink %s", path);
        if (guestfs_write(g, path, content, len) < 0 || guestfs_chmod(g, mode, path) < 0 ||
            guestfs_chown(g, 0, 0, path) < 0)
                return gfs_fail(g, ret_error, "agent: writing %s", path);
        return 0;
}

static int guest_mkdir_p(guestfs_h *g, const char *dir, char **ret_error)
{
        if (guestfs_mkdir_p(g, dir) < 0)
                return gfs_fail(g, ret_error, "agent: creating %s", dir);
        return 0;
}

static int upload(guestfs_h *g, const char *src, const char *dst, char **ret_error)
{
        if (guestfs_is_symlink(g, dst) > 0 && guestfs_rm(g, dst) < 0)
                return gfs_fail(g, ret_error, "agent: replacing the symlink %s", dst);
        if (guestfs_upload(g, src, dst) < 0 || guestfs_chmod(g, 0755, dst) < 0 || guestfs_chown(g, 0, 0, dst) < 0)
                return gfs_fail(g, ret_error, "agent: installing %s as %s", src, dst);
        return 0;
}

static int install_systemd(guestfs_h *g, char **ret_error)
{
        const char *path = "/etc/systemd/system/slate-agent.service",
                   *wants = "/etc/systemd/system/multi-user.target.wants";
        int r;
        if ((r = guest_mkdir_p(g, wants, ret_error)) < 0 ||
            (r = write_file(g, path, unit, sizeof unit - 1, 0644, ret_error)) < 0)
                return r;
        _cleanup_free_ char *link = xasprintf("%s/slate-agent.service", wants);
        if (guestfs_ln_sf(g, path, link) < 0)
                return gfs_fail(g, ret_error, "agent: enabling the service (%s)", link);
        return 0;
}

static int add_rc_local_hook(guestfs_h *g, char **ret_error)
{
        const char *path = "/etc/rc.local";
        if (guestfs_is_file(g, path) > 0) {
                int64_t size = guestfs_filesize(g, path);
                if (size < 0 || size > RC_LOCAL_MAX)
                        return 0;
                size_t len;
                _cleanup_free_ char *old = guestfs_read_file(g, path, &len);
                if (!old)
                        return gfs_fail(g, ret_error, "agent: reading %s", path);
                if (memmem(old, len, "/etc/init.d/slate-agent", 23))
                        return 0;
                /* Before a final "exit 0", which Debian's rc.local template ends with. */
                const char *ex = NULL;
                for (const char *p = old; (p = memmem(p, len - (size_t)(p - old), "\nexit 0", 7)); p++)
                        ex = p + 1;
                size_t head = ex ? (size_t)(ex - old) : len;
                _cleanup_free_ char *text = xasprintf("%.*s%s%s%.*s", (int)head, old,
                                                      head > 0 && old[head - 1] != '\n' ? "\n" : "", RC_LOCAL_HOOK,
                                                      (int)(len - head), old + head);
                return write_file(g, path, text, strlen(text), 0755, ret_error);
        }
        if (guestfs_exists(g, path) > 0)
                return 0;       /* a directory or a link: not ours to change */
        static const char rc[] = "#!/bin/sh\n" RC_LOCAL_HOOK "exit 0\n";
        return write_file(g, path, rc, sizeof rc - 1, 0755, ret_error);
}

/* sysv-rc runlevel links, where the image has those directories. */
static int add_rc_links(guestfs_h *g, char **ret_error)
{
        for (int lvl = 2; lvl <= 5; lvl++) {
                _cleanup_free_ char *dir = xasprintf("/etc/rc%d.d", lvl), *link = xasprintf("%s/S99slate-agent", dir);
                if (guestfs_is_dir(g, dir) <= 0)
                        continue;
                if (guestfs_ln_sf(g, "../init.d/slate-agent", link) < 0)
                        return gfs_fail(g, ret_error, "agent: linking %s", link);
        }
        return 0;
}

int agent_install(guestfs_h *g, const char *init, const char *agent_binary, const char *session_script,
                  json_object **ret_report, char **ret_error)
{
        struct stat st;
        if (stat(agent_binary, &st) < 0 || !S_ISREG(st.st_mode)) {
                *ret_error = xasprintf("agent: %s: %s (slate.conf agent-binary)", agent_binary,
                                       errno ? strerror(errno) : "not a regular file");
                return -ENOENT;
        }
        bool had = guestfs_exists(g, AGENT_GUEST_PATH) > 0;
        int r;
        if ((r = guest_mkdir_p(g, "/usr/libexec/slate", ret_error)) < 0 ||
            (r = upload(g, agent_binary, AGENT_GUEST_PATH, ret_error)) < 0)
                return r;
        bool script = session_script && access(session_script, R_OK) == 0;
        if (script && (r = upload(g, session_script, AGENT_GUEST_SESSION, ret_error)) < 0)
                return r;
        bool systemd = strcmp(init, "systemd") == 0;
        if (systemd) {
                r = install_systemd(g, ret_error);
        } else {
                if ((r = guest_mkdir_p(g, "/etc/init.d", ret_error)) == 0 &&
                    (r = write_file(g, "/etc/init.d/slate-agent", initscript, sizeof initscript - 1, 0755,
                                    ret_error)) == 0 &&
                    (r = add_rc_local_hook(g, ret_error)) == 0)
                        r = add_rc_links(g, ret_error);
        }
        if (r < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "action", json_object_new_string(had ? "updated" : "installed"));
        json_object_object_add(o, "service", json_object_new_string(systemd ? "systemd" : "sysv"));
        json_object_object_add(o, "session_script", json_object_new_boolean(script));
        *ret_report = o;
        return 0;
}
