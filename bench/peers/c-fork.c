/*
 * The classic accept-fork echo server, as docs/internals.md sets it beside
 * server.ts: socket, bind, listen, accept, fork, close; SIGCHLD and waitpid
 * reap. Built by the bench with cc -O2.
 *
 *     c-fork PORT     (0 = any free port)
 *
 * With FORKSERVER_FORK_TIMES set (make bench's cost table), the parent writes
 * `fork-time fork=NS` on stderr after each fork(): the call's own time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void reap(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

/* Every byte back until the client half-closes; then close. */
static void serve(int fd) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) return;
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                return;
            }
            off += w;
        }
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    const char *times = getenv("FORKSERVER_FORK_TIMES");
    int trace_times = times != NULL && *times != '\0';
    int listenfd = socket(AF_INET, SOCK_STREAM, 0);
    if (listenfd < 0) { perror("fatal: socket"); return 1; }
    int one = 1;
    setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (bind(listenfd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("fatal: bind"); return 1; }
    if (listen(listenfd, 128) < 0) { perror("fatal: listen"); return 1; }
    socklen_t len = sizeof addr;
    getsockname(listenfd, (struct sockaddr *)&addr, &len);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* accept() resumes after a SIGCHLD */
    sigaction(SIGCHLD, &sa, NULL);

    fprintf(stderr, "listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    for (;;) {
        int connfd = accept(listenfd, NULL, NULL);
        if (connfd < 0) {
            if (errno != EINTR) {
                perror("accept");
                usleep(10000); /* out of descriptors, say: do not spin */
            }
            continue;
        }
        long long t0 = now_ns();
        pid_t pid = fork();
        long long forked = now_ns();
        if (pid == 0) {
            close(listenfd);
            serve(connfd);
            close(connfd);
            _exit(0);
        }
        if (pid < 0) perror("fork");
        else if (trace_times) fprintf(stderr, "fork-time fork=%lld\n", forked - t0);
        close(connfd);
    }
}
