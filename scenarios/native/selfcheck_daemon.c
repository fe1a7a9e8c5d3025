/* A daemon of the kind people already have: it checks itself, and the harness only asks.
 *
 *   selfcheck_daemon --pidfile PATH --result PATH [--interval MS]
 *
 * The launcher double-forks: the daemon leads a session of its own, the launcher exits 0 once
 * the daemon has written its pidfile. The daemon forks a helper that calls setsid() too (a
 * tree whose members lead their own sessions and groups), and then, every interval, sends a
 * numbered message round its own Unix sockets (a stream socketpair and a datagram
 * socketpair) and reads the helper's heartbeat from a pipe, printing "tick N" on stdout.
 *
 * On SIGTERM it stops, checks its own state (every message came back, in order; the sockets
 * still carry data both ways; the helper is still beating) and writes PASS, or FAIL and why,
 * into the result file; the exit status is 0 for PASS and 1 for FAIL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
        ;
}

static int write_file(const char *path, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    FILE *f;

    /* Written whole, then renamed: a reader never sees half a pid or half a verdict. */
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

/* One numbered message through a connected socket pair and back; 0 when it came back intact. */
static int round_trip(int a, int b, long n, char *why, size_t len)
{
    long got = -1;

    if (send(a, &n, sizeof(n), 0) != sizeof(n)) {
        snprintf(why, len, "send %ld: %s", n, strerror(errno));
        return -1;
    }
    if (recv(b, &got, sizeof(got), 0) != sizeof(got) || got != n) {
        snprintf(why, len, "message %ld came back as %ld", n, got);
        return -1;
    }
    if (send(b, &n, sizeof(n), 0) != sizeof(n) || recv(a, &got, sizeof(got), 0) != sizeof(got) ||
        got != n) {
        snprintf(why, len, "reply %ld came back as %ld", n, got);
        return -1;
    }
    return 0;
}

static void helper(int beat_fd, long interval)
{
    long n = 0;

    setsid(); /* a member of the tree that leads its own session and group */
    signal(SIGTERM, SIG_DFL);
    for (;;) {
        n++;
        if (write(beat_fd, &n, sizeof(n)) != sizeof(n))
            _exit(1);
        sleep_ms(interval);
    }
}

static int daemon_main(const char *pidfile, const char *result, long interval)
{
    int stream[2], dgram[2], beat[2];
    long n = 0, beats = 0, last_beat = 0;
    char why[512] = "";
    pid_t helper_pid;
    int ok = 1;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream) < 0 ||
        socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) < 0 || pipe(beat) < 0) {
        perror("selfcheck_daemon: sockets");
        return 1;
    }
    helper_pid = fork();
    if (helper_pid < 0)
        return 1;
    if (helper_pid == 0) {
        close(beat[0]);
        helper(beat[1], interval);
    }
    close(beat[1]);
    fcntl(beat[0], F_SETFL, O_NONBLOCK);
    if (write_file(pidfile, "%d\n", (int)getpid()) < 0) {
        perror("selfcheck_daemon: pidfile");
        kill(helper_pid, SIGKILL);
        return 1;
    }
    while (!stop) {
        long b;
        n++;
        if (round_trip(stream[0], stream[1], n, why, sizeof(why)) < 0 ||
            round_trip(dgram[0], dgram[1], n, why, sizeof(why)) < 0) {
            ok = 0;
            break;
        }
        while (read(beat[0], &b, sizeof(b)) == sizeof(b)) {
            if (b != last_beat + 1) {
                snprintf(why, sizeof(why), "heartbeat %ld after %ld", b, last_beat);
                ok = 0;
            }
            last_beat = b;
            beats++;
        }
        printf("tick %ld\n", n);
        fflush(stdout);
        sleep_ms(interval);
    }
    /* The final check, after whatever happened to us meanwhile (a migration, say). */
    if (ok && round_trip(stream[0], stream[1], n + 1, why, sizeof(why)) < 0)
        ok = 0;
    if (ok && round_trip(dgram[0], dgram[1], n + 1, why, sizeof(why)) < 0)
        ok = 0;
    if (ok && (beats == 0 || kill(helper_pid, 0) < 0)) {
        snprintf(why, sizeof(why), "the helper stopped beating (%ld beats)", beats);
        ok = 0;
    }
    kill(helper_pid, SIGKILL);
    waitpid(helper_pid, NULL, 0);
    if (ok)
        write_file(result, "PASS %ld round trips, %ld heartbeats\n", n, beats);
    else
        write_file(result, "FAIL %s\n", why);
    unlink(pidfile);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *pidfile = NULL, *result = NULL;
    long interval = 10;
    pid_t child;
    int status;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pidfile") == 0)
            pidfile = argv[i + 1];
        else if (strcmp(argv[i], "--result") == 0)
            result = argv[i + 1];
        else if (strcmp(argv[i], "--interval") == 0)
            interval = strtol(argv[i + 1], NULL, 10);
    }
    if (!pidfile || !result || interval <= 0 || argc % 2 == 0) {
        fprintf(stderr, "usage: %s --pidfile PATH --result PATH [--interval MS]\n", argv[0]);
        return 2;
    }
    child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        /* The classic daemon: a new session, then a second fork so it can never regain a
         * terminal; the middle process exits at once. */
        if (setsid() < 0)
            _exit(1);
        child = fork();
        if (child < 0)
            _exit(1);
        if (child > 0)
            _exit(0);
        signal(SIGTERM, on_term);
        if (chdir("/") < 0)
            _exit(1);
        _exit(daemon_main(pidfile, result, interval));
    }
    if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    /* Exit 0 only once the daemon has said it runs: its pidfile exists. */
    for (int i = 0; i < 1000; i++) {
        if (access(pidfile, F_OK) == 0)
            return 0;
        sleep_ms(10);
    }
    fprintf(stderr, "selfcheck_daemon: no pidfile after 10 s\n");
    return 1;
}
