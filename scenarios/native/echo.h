/* Shared by echo_server.c and echo_client.c: the protocol and the socket set-up.
 *
 * The protocol is the article's: every message is a 1024-byte frame holding a NUL-terminated
 * text, the client's greeting and the server's reply below. One round trip per interval.
 */
#ifndef ECHO_H
#define ECHO_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FRAME 1024
#define GREETING "How are you !!!"
#define REPLY "OK,I got it!"

enum kind { DGRAM, STREAM };

static inline int parse_kind(const char *text, enum kind *kind)
{
    if (strcmp(text, "dgram") == 0)
        *kind = DGRAM;
    else if (strcmp(text, "stream") == 0)
        *kind = STREAM;
    else
        return -1;
    return 0;
}

/* A path longer than sun_path would be silently cut: refuse it instead. */
static inline int unix_address(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr->sun_path)) {
        fprintf(stderr, "socket path too long (at most %zu bytes): %s\n",
                sizeof(addr->sun_path) - 1, path);
        return -1;
    }
    strcpy(addr->sun_path, path);
    return 0;
}

/* A socket bound to path. A stale file from an earlier run would make bind() fail, so it goes
 * first; the path is ours (given on the command line, in the caller's own directory). */
static inline int bound_socket(enum kind kind, const char *path)
{
    struct sockaddr_un addr;
    int fd;

    if (unix_address(path, &addr) < 0)
        return -1;
    fd = socket(AF_UNIX, kind == DGRAM ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        fprintf(stderr, "unlink %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "bind %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static inline void frame_text(char *frame, const char *text)
{
    memset(frame, 0, FRAME);
    strncpy(frame, text, FRAME - 1);
}

/* Read or write a whole frame on a stream socket: a stream may split it. Returns 1 when done,
 * 0 at end of stream, -1 on error (errno set; EAGAIN after a receive timeout with nothing read). */
static inline int stream_io(int fd, char *frame, int writing)
{
    size_t done = 0;

    while (done < FRAME) {
        ssize_t n = writing ? send(fd, frame + done, FRAME - done, MSG_NOSIGNAL)
                            : recv(fd, frame + done, FRAME - done, 0);
        if (n > 0) {
            done += (size_t)n;
        } else if (n == 0 && !writing) {
            return 0;
        } else if (errno == EINTR || (done > 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            /* EINTR: SIGSTOP/SIGCONT (and CRIU) interrupt socket calls that have a timeout.
             * A timeout halfway through a frame must not lose the frame's start. */
            continue;
        } else {
            return -1;
        }
    }
    return 1;
}

#endif
