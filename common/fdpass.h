/* Bytes over a unix socket with a file descriptor beside them (SCM_RIGHTS): the IPC between
 * slated and slate-session (ipc.c), and open_as's child handing back what it opened. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* All len bytes, fd (or -1) with the first of them; EINTR and short writes handled. 0 or -errno. */
int fdpass_send(int sock, const void *buf, size_t len, int fd);
/* One recvmsg with flags (MSG_DONTWAIT or 0): bytes read, 0 at EOF, or -errno. The first fd that
 * came goes to *ret_fd (close-on-exec), any others are closed; -1 when none. A truncated control
 * message is -EBADMSG. */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int flags, int *ret_fd);
