// The floor of bench/run's figures 2 and 4: one byte written to each of N connected loopback
// sockets, one after another, as any server on one core must when every answer is due at the same
// instant. The time the last write waits is the least lateness a server could show.
//
//     cc -O2 -o /tmp/write_floor bench/floors/write_floor.c
//     ulimit -n 20000; taskset -c 0 /tmp/write_floor 5000; taskset -c 0 /tmp/write_floor 1000
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(l, (void *)&a, sizeof a); listen(l, 4096); getsockname(l, (void *)&a, &len);
    int *server = malloc(n * sizeof(int)), *client = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        client[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(client[i], (void *)&a, sizeof a)) { perror("connect"); return 1; }
        server[i] = accept(l, NULL, NULL);
        int one = 1; setsockopt(server[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        double start = now();
        for (int i = 0; i < n; i++) if (write(server[i], "x", 1) != 1) { perror("write"); return 1; }
        double took = now() - start;
        if (took < best) best = took;
        char b[64];
        for (int i = 0; i < n; i++) if (read(client[i], b, sizeof b) < 1) return 1;
    }
    printf("%d one-byte writes, one per connection: %.1f ms (best of 5), %.2f us each\n", n, best * 1e3, best * 1e6 / n);
    return 0;
}
