/*
 * test_rendezvous.c: how ranks meet: llmc/rendezvous.h with 4 processes on
 * this machine, and llmc/comm.h's deadline on the blocking calls after it
 * (NCCL's communicator setup).
 *
 * Checks: over tcp and through a file, every rank gets rank 0's blob, even
 * when rank 0 starts last; a rank with nobody to meet gives up within its
 * timeout with an error (exit 1) instead of hanging; a file left by
 * another run is refused; a call that never returns ends its process at its
 * deadline with a line naming it, and a disarmed deadline stays silent.
 * Prints one line per check; exits 1 on failure.
 *
 * usage: test_rendezvous SCRATCH_DIR PORT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../llmc/comm.h"
#include "../llmc/rendezvous.h"

#define WORLD 4
#define BLOB 128  // the size of NCCL's unique id

static int failures = 0;

static void expect(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

static void make_blob(unsigned char *b, int rank) {
    for (int i = 0; i < BLOB; i++) b[i] = rank == 0 ? (unsigned char)(i * 37 + 11) : 0;
}

// runs WORLD ranks (rank 0 after a delay); each exits 0 when it holds rank 0's blob
static int run_world(const char *how, const char *where, int port, int rank0_delay_ms) {
    pid_t pids[WORLD];
    fflush(stdout);  // (children must not print the parent's buffered lines again)
    for (int r = 0; r < WORLD; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            unsigned char blob[BLOB], want[BLOB];
            make_blob(blob, r);
            make_blob(want, 0);
            if (r == 0) rendezvous_sleep_ms(rank0_delay_ms);
            if (strcmp(how, "tcp") == 0) rendezvous_tcp("127.0.0.1", port, r, WORLD, blob, BLOB, 20.0);
            else rendezvous_file(where, r, blob, BLOB, 20.0);
            _exit(memcmp(blob, want, BLOB) == 0 ? 0 : 2);
        }
    }
    int all_ok = 1;
    for (int r = 0; r < WORLD; r++) {
        int status;
        waitpid(pids[r], &status, 0);
        all_ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return all_ok;
}

// one process calling f; returns its exit status and how long it took
// runs f(arg, port) in a child, its stderr (the expected error line) to
// errors (NULL: /dev/null); its exit status, 128 if a signal ended it
static int run_alone(void (*f)(const char *, int), const char *arg, int port, double *seconds, const char *errors) {
    double t0 = rendezvous_now();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(errors ? errors : "/dev/null", "w", stderr)) _exit(3);
        f(arg, port);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    *seconds = rendezvous_now() - t0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void lone_client(const char *host, int port) {
    unsigned char blob[BLOB];
    rendezvous_tcp(host, port, 1, WORLD, blob, BLOB, 1.0);
}

static void lone_file_reader(const char *path, int port) {
    (void)port;
    unsigned char blob[BLOB];
    rendezvous_file(path, 1, blob, BLOB, 1.0);
}

static void stale_file_writer(const char *path, int port) {
    (void)port;
    unsigned char blob[BLOB];
    make_blob(blob, 0);
    rendezvous_file(path, 0, blob, BLOB, 1.0);
}

static void blocked_call(const char *what, int port) {
    (void)port;
    error_rank = 2;
    comm_deadline_arm(1.0, what);
    pause();  // never returns by itself
}

static void call_in_time(const char *what, int port) {
    (void)port;
    comm_deadline_arm(0.5, what);
    comm_deadline_disarm();
    sleep(1);  // past the deadline
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SCRATCH_DIR PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    char path[4096];
    snprintf(path, sizeof(path), "%s/nccl_id", argv[1]);

    expect(run_world("tcp", NULL, port, 0), "tcp: 4 ranks get rank 0's blob");
    expect(run_world("tcp", NULL, port + 1, 500), "tcp: also when rank 0 starts half a second late");
    expect(run_world("fs", path, 0, 300), "fs: 4 ranks get rank 0's blob through a file");
    double s;
    int rc = run_alone(lone_client, "127.0.0.1", port + 2, &s, NULL);
    expect(rc == 1 && s < 5.0, "tcp: a rank with no rank 0 to meet exits 1 after its 1 s timeout");
    {   // rank 0's listen queue full: the kernel drops further connection
        // requests, and a plain connect() would retry them for minutes
        int server = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        struct sockaddr_in addr = {0};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons((uint16_t)(port + 3));
        setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        int queued[2] = {socket(AF_INET, SOCK_STREAM, 0), socket(AF_INET, SOCK_STREAM, 0)};
        int ready = bind(server, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(server, 0) == 0;
        for (int i = 0; i < 2 && ready; i++) {  // the first fills the queue, the second waits
            fcntl(queued[i], F_SETFL, O_NONBLOCK);
            connect(queued[i], (struct sockaddr *)&addr, sizeof(addr));
        }
        rc = ready ? run_alone(lone_client, "127.0.0.1", port + 3, &s, NULL) : -1;
        expect(rc == 1 && s < 5.0, "tcp: a rank whose connection rank 0 never takes exits 1 after its 1 s timeout");
        close(queued[0]), close(queued[1]), close(server);
    }
    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/never", argv[1]);
    rc = run_alone(lone_file_reader, missing, 0, &s, NULL);
    expect(rc == 1 && s < 5.0, "fs: a rank whose file never appears exits 1 after its 1 s timeout");
    rc = run_alone(stale_file_writer, path, 0, &s, NULL);  // path still holds the earlier run's id
    expect(rc == 1, "fs: rank 0 refuses a file left by another run");
    rendezvous_file_done(path, 0);
    expect(access(path, F_OK) != 0, "fs: rank 0 removes the file when done");
    char errors[4200], line[512] = "";
    snprintf(errors, sizeof(errors), "%s/deadline.txt", argv[1]);
    rc = run_alone(blocked_call, "the blocked call", 0, &s, errors);
    FILE *f = fopen(errors, "r");
    if (f) {
        if (!fgets(line, sizeof(line), f)) line[0] = '\0';
        fclose(f);
    }
    expect(rc == 1 && s < 5.0 && strcmp(line, "error: rank 2: the blocked call did not return in 1 s (-ct): a rank is "
                                              "dead or hung; ending the job\n") == 0,
           "deadline: a call that never returns ends its process after 1 s, naming the rank and the call");
    rc = run_alone(call_in_time, "a call in time", 0, &s, NULL);
    expect(rc == 0, "deadline: disarmed in time, it stays silent");
    printf("%s: %d check(s) failed\n", failures ? "FAILED" : "all ok", failures);
    return failures ? 1 : 0;
}
