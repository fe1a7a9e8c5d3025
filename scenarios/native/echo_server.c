/* Echo server of the native workload pair: answers every greeting with the reply frame.
 *
 *     echo_server dgram|stream --socket PATH
 *
 * Prints one line per request on stdout, errors on stderr, and runs until killed.
 */
#include "echo.h"

#include <getopt.h>
#include <stddef.h>

static void usage(void)
{
    fprintf(stderr, "usage: echo_server dgram|stream --socket PATH\n");
    exit(2);
}

static int serve_dgram(int fd)
{
    char frame[FRAME];
    unsigned long n = 0;

    for (;;) {
        struct sockaddr_un peer;
        socklen_t peerlen = sizeof(peer);
        ssize_t got = recvfrom(fd, frame, FRAME, 0, (struct sockaddr *)&peer, &peerlen);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            perror("recvfrom");
            return 1;
        }
        n++;
        frame[got < FRAME ? got : FRAME - 1] = '\0';
        /* CRIU restores queued datagrams without their sender's address (it does not save
         * it): such a request cannot be answered, but it must not end the server either. */
        if (peerlen <= offsetof(struct sockaddr_un, sun_path) || peer.sun_path[0] == '\0') {
            printf("server: request %lu: %s (no sender address: skipped)\n", n, frame);
            continue;
        }
        peer.sun_path[sizeof(peer.sun_path) - 1] = '\0';
        printf("server: request %lu: %s from %s\n", n, frame, peer.sun_path);
        frame_text(frame, REPLY);
        if (sendto(fd, frame, FRAME, 0, (struct sockaddr *)&peer, peerlen) < 0)
            /* The client may be frozen, dumped or not yet restored: it sends again. */
            fprintf(stderr, "server: reply %lu to %s: %s\n", n, peer.sun_path, strerror(errno));
    }
}

static int serve_stream(int fd)
{
    char frame[FRAME];
    unsigned long n = 0;

    if (listen(fd, 8) < 0) {
        perror("listen");
        return 1;
    }
    for (;;) {
        int conn = accept(fd, NULL, NULL);

        if (conn < 0) {
            if (errno == EINTR)
                continue;
            perror("accept");
            return 1;
        }
        for (;;) {
            int r = stream_io(conn, frame, 0);

            if (r <= 0) {
                if (r < 0)
                    perror("server: recv");
                break;
            }
            n++;
            frame[FRAME - 1] = '\0';
            printf("server: request %lu: %s\n", n, frame);
            frame_text(frame, REPLY);
            if (stream_io(conn, frame, 1) < 0) {
                perror("server: send");
                break;
            }
        }
        /* The client went away: wait for the next one. */
        close(conn);
    }
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    enum kind kind;
    int opt, fd;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 's')
            path = optarg;
        else
            usage();
    }
    if (optind != argc - 1 || parse_kind(argv[optind], &kind) < 0 || path == NULL)
        usage();
    /* Line-buffered even into a file: the harness counts these lines while we run. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    fd = bound_socket(kind, path);
    if (fd < 0)
        return 1;
    printf("server: %s socket on %s\n", kind == DGRAM ? "datagram" : "stream", path);
    return kind == DGRAM ? serve_dgram(fd) : serve_stream(fd);
}
