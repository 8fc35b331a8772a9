/*
 * rendezvous.h: hands a small blob (NCCL's unique id) from rank 0 to every
 * other rank without MPI, for clusters that start their ranks another way
 * (Slurm's srun without MPI support, one launch per node):
 *
 *   tcp: rank 0 listens on a port; every other rank connects to host:port
 *        and reads the blob;
 *   fs:  rank 0 writes the blob to a fresh file on a filesystem every rank
 *        sees (atomically: temp file, rename); the others wait for it.
 *
 * Both give up after a timeout with a one-line error, never hang.
 */
#ifndef LLMC_RENDEZVOUS_H
#define LLMC_RENDEZVOUS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "utils.h"

static inline double rendezvous_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void rendezvous_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// Sends (recv 0) or receives (recv 1) exactly n bytes on fd before `deadline`; 0 on success.
static inline int rendezvous_transfer(int fd, void *buf, size_t n, int recv, double deadline) {
    size_t done = 0;
    while (done < n) {
        int left_ms = (int)((deadline - rendezvous_now()) * 1000);
        struct pollfd p = {fd, (short)(recv ? POLLIN : POLLOUT), 0};
        if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0) return -1;
        // (MSG_NOSIGNAL: a peer that hung up is an error here, not a SIGPIPE)
        ssize_t k = recv ? read(fd, (char *)buf + done, n - done)
                         : send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        done += (size_t)k;
    }
    return 0;
}

// Connects fd to addr before `deadline`; 0 on success. (A plain connect may
// block for minutes: while rank 0's listen queue is full, or on a host
// that drops the packets.)
static inline int rendezvous_connect(int fd, const struct addrinfo *addr, double deadline) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
    int rc = connect(fd, addr->ai_addr, addr->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
        int left_ms = (int)((deadline - rendezvous_now()) * 1000), err = 0;
        socklen_t len = sizeof(err);
        struct pollfd p = {fd, POLLOUT, 0};
        rc = left_ms > 0 && poll(&p, 1, left_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
             err == 0 ? 0 : -1;
    }
    return rc == 0 && fcntl(fd, F_SETFL, flags) == 0 ? 0 : -1;
}

// -ps "host:port" into host (room for 256) and port: 1 when it is one (a
// host without ':', a port in 1..65535 and nothing after it), else 0
static inline int rendezvous_parse_server(const char *server, char *host, int *port) {
    int len = 0;
    *port = 0;
    return sscanf(server, "%255[^:]:%5d%n", host, port, &len) == 2 && server[len] == '\0' &&
           server[strlen(host) + 1] >= '0' && server[strlen(host) + 1] <= '9' && *port >= 1 && *port <= 65535;
}

// tcp: rank 0 serves blob (n bytes) on port to world - 1 ranks; the others
// read it from host:port, retrying the connection until the timeout.
static inline void rendezvous_tcp(const char *host, int port, int rank, int world, void *blob, size_t n,
                                  double timeout_s) {
    if (port < 1 || port > 65535) fatal("rendezvous: port %d is not in 1..65535", port);
    double deadline = rendezvous_now() + timeout_s;
    if (rank == 0) {
        int server = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (server < 0) fatal("rendezvous: cannot make a socket: %s", strerror(errno));
        setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in addr;
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_ANY);
        addr.sin_port = htons((uint16_t)port);
        if (bind(server, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(server, world) != 0) {
            fatal("rendezvous: cannot listen on port %d: %s", port, strerror(errno));
        }
        for (int served = 0; served < world - 1; served++) {
            int left_ms = (int)((deadline - rendezvous_now()) * 1000);
            struct pollfd p = {server, POLLIN, 0};
            if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0) {
                fatal("rendezvous: %d of %d ranks connected to port %d within %.0f s", served, world - 1, port,
                      timeout_s);
            }
            int client = accept(server, NULL, NULL);
            if (client < 0 || rendezvous_transfer(client, blob, n, 0, deadline) != 0) {
                fatal("rendezvous: sending to a rank on port %d failed", port);
            }
            close(client);
        }
        close(server);
        return;
    }
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) fatal("rendezvous: cannot resolve '%s': %s", host, gai_strerror(rc));
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) fatal("rendezvous: cannot make a socket: %s", strerror(errno));
        if (rendezvous_connect(fd, res, deadline) == 0) {
            int ok = rendezvous_transfer(fd, blob, n, 1, deadline) == 0;
            close(fd);
            if (!ok) fatal("rendezvous: reading from %s:%d failed", host, port);
            break;
        }
        close(fd);
        if (rendezvous_now() > deadline) {
            fatal("rendezvous: no rank 0 listening on %s:%d within %.0f s", host, port, timeout_s);
        }
        rendezvous_sleep_ms(100);
    }
    freeaddrinfo(res);
}

// fs: rank 0 writes blob (n bytes) to path, which must not exist yet (a
// file left by another run would hand out a stale id); the others wait for
// it. Rank 0 removes it with rendezvous_file_done once every rank has it.
static inline void rendezvous_file(const char *path, int rank, void *blob, size_t n, double timeout_s) {
    struct stat st;
    if (rank == 0) {
        if (stat(path, &st) == 0) {
            fatal("rendezvous: '%s' exists already (from another run?): remove it or choose a fresh path", path);
        }
        AtomicFile af;
        atomic_open(&af, path);
        fwrite_check(blob, 1, n, af.f);
        atomic_commit(&af);
        return;
    }
    double deadline = rendezvous_now() + timeout_s;
    while (stat(path, &st) != 0) {
        if (rendezvous_now() > deadline) fatal("rendezvous: '%s' did not appear within %.0f s", path, timeout_s);
        rendezvous_sleep_ms(50);
    }
    FILE *f = fopen_check(path, "rb");
    if (file_size_of(f) != (long long)n) fatal("rendezvous: '%s' is not %zu bytes", path, n);
    fread_check(blob, 1, n, f, path);
    fclose_check(f);
}

static inline void rendezvous_file_done(const char *path, int rank) {
    if (rank == 0) remove(path);
}

#endif  // LLMC_RENDEZVOUS_H
