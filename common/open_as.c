/* Opening a file with another user's rights (open_as.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/fdpass.h"
#include "common/open_as.h"

#define GROUPS_MAX 256

int open_as(const char *path, uid_t uid, gid_t gid, int extra_flags, int *ret_fd)
{
        *ret_fd = -1;
        /* The user's groups, worked out here: the child may only make system calls. */
        gid_t groups[GROUPS_MAX];
        int ngroups = GROUPS_MAX;
        char buf[4096];
        struct passwd pw, *pwp = NULL;
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp) {
                if (getgrouplist(pw.pw_name, gid, groups, &ngroups) < 0)
                        ngroups = GROUPS_MAX;   /* truncated: fewer rights, never more */
        } else {
                groups[0] = gid;
                ngroups = 1;
        }
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int e = -errno;
                close(sp[0]);
                close(sp[1]);
                return e;
        }
        if (pid == 0) {
                close(sp[0]);
                int fd = -1, err = 0;
                if (setgroups((size_t)ngroups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0 ||
                    (uid != 0 && setuid(0) == 0))
                        err = EPERM;
                else if ((fd = open(path, O_RDONLY | O_CLOEXEC | extra_flags)) < 0)
                        err = errno;
                fdpass_send(sp[1], &err, sizeof err, fd);
                _exit(0);
        }
        close(sp[1]);
        int err = EIO, fd = -1;
        ssize_t n = fdpass_recv(sp[0], &err, sizeof err, 0, &fd);
        close(sp[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (n != (ssize_t)sizeof err)
                err = EIO;
        if (err != 0 || fd < 0) {
                if (fd >= 0)
                        close(fd);
                return -(err ? err : EIO);
        }
        *ret_fd = fd;
        return 0;
}
