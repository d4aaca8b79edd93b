/* paced-floor: the plain-C floor of a PACED TCP connect checker, the reference for CPU per probe
 * at a fixed rate. check-floor.c (../shared/lab/floor) connects unthrottled with 200 in flight, so
 * every epoll_wait returns a batch and the process never sleeps; a health checker runs at a
 * rate (10,000/s = 10 per millisecond), sleeping between slots, and pays a wake-up per slot.
 * This is check-floor's loop at RATE connects per second: the connects due are started at each
 * wake (epoll_wait's timeout is the next one's slot, 1 ms resolution), each non-blocking with
 * SO_LINGER 0, closed when it completes. No timeouts (the acceptor answers everything).
 * usage: paced-floor BASE_PREFIX N RATE SECONDS   e.g. 127.0.1. 100 10000 10 (hosts .101..) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int ep, n; static long next; static char *pre; static long done, failed;
static void start(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct linger l = {1, 0}; setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l); /* RST on close */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
  char ip[32]; snprintf(ip, sizeof ip, "%s%ld", pre, 101 + next++ % n); inet_pton(AF_INET, ip, &a.sin_addr);
  connect(fd, (void *)&a, sizeof a);
  struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd}; epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}
int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: paced-floor BASE_PREFIX N RATE SECONDS\n"); return 2; }
  pre = argv[1]; n = atoi(argv[2]); double rate = atof(argv[3]), secs = atof(argv[4]);
  ep = epoll_create1(0);
  struct epoll_event ev[256]; double t0 = now();
  while (now() - t0 < secs) {
    long due = (long)((now() - t0) * rate);
    while (next < due) start();
    double wait_ms = ((next + 1) / rate - (now() - t0)) * 1e3;
    int k = epoll_wait(ep, ev, 256, wait_ms < 0 ? 0 : (int)wait_ms + 1);
    for (int i = 0; i < k; i++) {
      int fd = ev[i].data.fd, err = 0; socklen_t l = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l); err ? failed++ : done++;
      close(fd);
    }
  }
  double el = now() - t0; struct rusage r; getrusage(RUSAGE_SELF, &r);
  double cpu = r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
  printf("paced: checks %ld (failed %ld) in %.2f s = %.0f/s; cpu %.2f s = %.1f us per check\n", done, failed, el, done / el, cpu, done ? cpu * 1e6 / done : 0);
  return 0;
}
