/* Echo client of the native workload pair: one greeting, one reply, per interval.
 *
 *     echo_client dgram|stream --socket PATH --server PATH [--interval MS] [--timeout MS]
 *
 * Prints "client: reply N: OK,I got it!" for each reply on stdout, problems on stderr, and
 * runs until killed (a stream client also ends when the server closes the connection).
 */
#include "echo.h"

#include <getopt.h>
#include <sys/time.h>
#include <time.h>

static void usage(void)
{
    fprintf(stderr, "usage: echo_client dgram|stream --socket PATH --server PATH"
                    " [--interval MS] [--timeout MS]\n");
    exit(2);
}

static long milliseconds(const char *text)
{
    char *end;
    long value = strtol(text, &end, 10);

    if (*text == '\0' || *end != '\0' || value < 0)
        usage();
    return value;
}

static void pause_ms(long ms)
{
    struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};

    /* A SIGSTOP/SIGCONT or a restore may cut the sleep short: sleep the rest. */
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}

static int set_timeout(int fd, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
        perror("setsockopt(SO_RCVTIMEO)");
        return -1;
    }
    return 0;
}

/* Runs until killed: a datagram client has no connection that could end. */
_Noreturn static void run_dgram(int fd, const struct sockaddr_un *server, long interval)
{
    char frame[FRAME];
    unsigned long n;

    for (n = 1;; n++) {
        frame_text(frame, GREETING);
        /* No connect(): the socket has no peer, every request names the server. */
        if (sendto(fd, frame, FRAME, 0, (const struct sockaddr *)server, sizeof(*server)) < 0) {
            fprintf(stderr, "client: request %lu: %s\n", n, strerror(errno));
            pause_ms(interval);
            continue;
        }
        for (;;) {
            ssize_t got = recv(fd, frame, FRAME, 0);

            if (got >= 0) {
                frame[got < FRAME ? got : FRAME - 1] = '\0';
                printf("client: reply %lu: %s\n", n, frame);
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* A lost datagram must not hang the client: send the next request. */
                fprintf(stderr, "client: request %lu: no reply (timeout)\n", n);
            } else {
                fprintf(stderr, "client: request %lu: recv: %s\n", n, strerror(errno));
            }
            break;
        }
        pause_ms(interval);
    }
}

static int run_stream(int fd, const struct sockaddr_un *server, long interval)
{
    char frame[FRAME];
    unsigned long n;

    if (connect(fd, (const struct sockaddr *)server, sizeof(*server)) < 0) {
        fprintf(stderr, "client: connect %s: %s\n", server->sun_path, strerror(errno));
        return 1;
    }
    for (n = 1;; n++) {
        int r;

        frame_text(frame, GREETING);
        if (stream_io(fd, frame, 1) < 0) {
            fprintf(stderr, "client: request %lu: send: %s\n", n, strerror(errno));
            return 1;
        }
        /* A stream loses nothing: after a timeout the reply is still coming, so wait on. */
        while ((r = stream_io(fd, frame, 0)) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            fprintf(stderr, "client: request %lu: no reply yet (timeout)\n", n);
        if (r <= 0) {
            fprintf(stderr, "client: request %lu: %s\n", n,
                    r == 0 ? "the server closed the connection" : strerror(errno));
            return 1;
        }
        frame[FRAME - 1] = '\0';
        printf("client: reply %lu: %s\n", n, frame);
        pause_ms(interval);
    }
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'},
        {"server", required_argument, NULL, 'S'},
        {"interval", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *server_path = NULL;
    long interval = 10, timeout = 1000;
    struct sockaddr_un server;
    enum kind kind;
    int opt, fd;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 's': path = optarg; break;
        case 'S': server_path = optarg; break;
        case 'i': interval = milliseconds(optarg); break;
        case 't': timeout = milliseconds(optarg); break;
        default: usage();
        }
    }
    if (optind != argc - 1 || parse_kind(argv[optind], &kind) < 0 || !path || !server_path ||
        timeout == 0)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (unix_address(server_path, &server) < 0)
        return 1;
    /* Bound to its own path, so a datagram server has an address to answer. */
    fd = bound_socket(kind, path);
    if (fd < 0 || set_timeout(fd, timeout) < 0)
        return 1;
    if (kind == DGRAM)
        run_dgram(fd, &server, interval);
    return run_stream(fd, &server, interval);
}
