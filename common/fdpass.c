/* File descriptors over unix sockets (fdpass.h). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/fdpass.h"

int fdpass_send(int sock, const void *buf, size_t len, int fd)
{
        size_t off = 0;
        while (off < len) {
                struct iovec iov = { .iov_base = (char *)buf + off, .iov_len = len - off };
                union {
                        char buf[CMSG_SPACE(sizeof(int))];
                        struct cmsghdr align;
                } u;
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                if (fd >= 0 && off == 0) {
                        memset(&u, 0, sizeof u);
                        mh.msg_control = u.buf;
                        mh.msg_controllen = sizeof u.buf;
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(c), &fd, sizeof(int));
                }
                ssize_t k = sendmsg(sock, &mh, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t)k;
        }
        return 0;
}

ssize_t fdpass_recv(int sock, void *buf, size_t len, int flags, int *ret_fd)
{
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        union {
                char buf[CMSG_SPACE(sizeof(int) * 4)];
                struct cmsghdr align;
        } u;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        *ret_fd = -1;
        ssize_t k;
        do
                k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                        /* Keep the first; a peer sending more gets them closed. */
                        if (*ret_fd < 0)
                                *ret_fd = fd;
                        else
                                close(fd);
                }
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                if (*ret_fd >= 0)
                        close(*ret_fd);
                *ret_fd = -1;
                return -EBADMSG;
        }
        return k;
}
