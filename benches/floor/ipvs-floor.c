/* benches/floor/ipvs-floor.c -- the project's plain-C floor for programming and reading IPVS over
 * generic netlink: what a program that does nothing but send the requests costs. The benchmarks
 * (benches/ipvs, benches/director) compare `director` with it in the same lab run.
 *
 *   ipvs-floor add N R [BATCH]   N TCP services 10.1.(s/250).(s%250+1):80, scheduler wrr, each with
 *                                R direct-routing real servers 10.2.(s%200).(r+1):80 weight 1 (the
 *                                table benches/ipvs/run.sh restores); BATCH requests (default 256)
 *                                are packed into one sendmsg and their acks read in bulk
 *   ipvs-floor dump              every service (one dump), then each service's real servers (one
 *                                dump each); prints the counts
 *
 * Built with -DSILENT, `add` sends its requests without NLM_F_ACK (success is silent, only refusals
 * come back) and reads what is queued after each sendmsg without waiting: the floor of the way
 * `director` sends batches (docs/ipvs.md, "Batches and flow control"); benches/floor/acks.sh
 * compares the two.
 *
 * Elapsed milliseconds (socket open and family lookup excluded) go to stderr as
 * "add N x R: T ms, E errors" / "dump: S services, D real servers: T ms".
 * Written for this project from the kernel's uapi headers (linux/ip_vs.h, linux/genetlink.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* An address attribute is 16 bytes whatever the family (IPv4 in the first 4). */
struct addr16 { uint32_t ip; uint32_t rest[3]; };

static int sock;
static uint16_t family;
static uint32_t next_seq = 1;
static char out[1 << 20];   /* requests being packed */
static size_t out_len;
static char in[1 << 20];    /* replies */

static double ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* ---- building requests in `out` ---- */

static void *reserve(size_t n) {
  void *p = out + out_len;
  memset(p, 0, NLMSG_ALIGN(n));
  out_len += NLMSG_ALIGN(n);
  return p;
}

static struct nlmsghdr *begin(uint16_t type, uint16_t flags, uint8_t cmd) {
  struct nlmsghdr *h = reserve(NLMSG_HDRLEN);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  h->nlmsg_seq = next_seq++;
  struct genlmsghdr *g = reserve(GENL_HDRLEN);
  g->cmd = cmd;
  g->version = IPVS_GENL_VERSION;
  return h;
}

static void finish(struct nlmsghdr *h) { h->nlmsg_len = (uint32_t)(out + out_len - (char *)h); }

static void attr(uint16_t type, const void *data, uint16_t len) {
  struct nlattr *a = reserve(NLA_HDRLEN + len);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + len;
  memcpy((char *)a + NLA_HDRLEN, data, len);
}

static struct nlattr *open_nest(uint16_t type) {
  struct nlattr *a = reserve(NLA_HDRLEN);
  a->nla_type = type | NLA_F_NESTED;
  return a;
}

static void close_nest(struct nlattr *a) { a->nla_len = (uint16_t)(out + out_len - (char *)a); }

static void attr_u32(uint16_t type, uint32_t v) { attr(type, &v, 4); }
static void attr_u16(uint16_t type, uint16_t v) { attr(type, &v, 2); }

/* A service key: TCP 10.1.x.y:80 (or the key of a dumped service, given as raw attributes). */
static void service_key(int s) {
  struct addr16 a;
  memset(&a, 0, sizeof a);
  a.ip = htonl((10u << 24) | (1u << 16) | ((unsigned)(s / 250) << 8) | (unsigned)(s % 250 + 1));
  attr_u16(IPVS_SVC_ATTR_AF, AF_INET);
  attr_u16(IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP);
  attr(IPVS_SVC_ATTR_ADDR, &a, sizeof a);
  attr_u16(IPVS_SVC_ATTR_PORT, htons(80));
}

/* ---- sending and reading ---- */

static void send_out(void) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  struct iovec iov = {out, out_len};
  struct msghdr m = {.msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov, .msg_iovlen = 1};
  if (sendmsg(sock, &m, 0) < 0) { perror("sendmsg"); exit(1); }
  out_len = 0;
}

#ifdef SILENT
#define ACK 0
/* Reads the replies queued by the last sendmsg (errors only), without waiting. */
static int read_acks(int want) {
  int errors = 0;
  (void)want;
  for (;;) {
    ssize_t n = recv(sock, in, sizeof in, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return errors;
      perror("recv"); exit(1);
    }
    for (struct nlmsghdr *h = (void *)in; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
      if (h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error) errors++;
  }
}
#else
#define ACK NLM_F_ACK
/* Reads replies until `want` acks (or errors) arrived; returns how many were errors. */
static int read_acks(int want) {
  int errors = 0;
  while (want > 0) {
    ssize_t n = recv(sock, in, sizeof in, 0);
    if (n < 0) { if (errno == EINTR) continue; perror("recv"); exit(1); }
    for (struct nlmsghdr *h = (void *)in; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      struct nlmsgerr *e = NLMSG_DATA(h);
      if (e->error) errors++;
      want--;
    }
  }
  return errors;
}
#endif

/* Runs one dump request already packed in `out`; calls `each` for every reply message. */
static void dump(void (*each)(struct nlmsghdr *)) {
  send_out();
  for (;;) {
    ssize_t n = recv(sock, in, sizeof in, 0);
    if (n < 0) { if (errno == EINTR) continue; perror("recv"); exit(1); }
    for (struct nlmsghdr *h = (void *)in; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return;
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error) { fprintf(stderr, "dump: error %d\n", e->error); exit(1); }
        return;
      }
      each(h);
    }
  }
}

/* The first attribute of `type` inside [p, p + len). */
static struct nlattr *find(void *p, int len, uint16_t type) {
  for (struct nlattr *a = p; len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
       len -= NLA_ALIGN(a->nla_len), a = (void *)((char *)a + NLA_ALIGN(a->nla_len)))
    if ((a->nla_type & NLA_TYPE_MASK) == type) return a;
  return NULL;
}

/* ---- the family ---- */

static uint16_t resolved;
static void family_reply(struct nlmsghdr *h) {
  char *body = (char *)NLMSG_DATA(h) + GENL_HDRLEN;
  struct nlattr *id = find(body, (int)(h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN), CTRL_ATTR_FAMILY_ID);
  if (id) memcpy(&resolved, (char *)id + NLA_HDRLEN, 2);
}

static void resolve_family(void) {
  struct nlmsghdr *h = begin(GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY);
  ((struct genlmsghdr *)NLMSG_DATA(h))->version = 1;
  attr(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME, sizeof IPVS_GENL_NAME);
  finish(h);
  send_out();
  ssize_t n = recv(sock, in, sizeof in, 0);
  for (struct nlmsghdr *r = (void *)in; n > 0 && NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n))
    if (r->nlmsg_type == GENL_ID_CTRL) family_reply(r);
  if (!resolved) { fprintf(stderr, "no IPVS generic-netlink family (is ip_vs loaded?)\n"); exit(1); }
  family = resolved;
}

/* ---- add ---- */

static int add(int n_svc, int n_real, int batch) {
  int pending = 0, errors = 0;
  for (int s = 0; s < n_svc; s++) {
    struct nlmsghdr *h = begin(family, ACK, IPVS_CMD_NEW_SERVICE);
    struct nlattr *svc = open_nest(IPVS_CMD_ATTR_SERVICE);
    service_key(s);
    attr(IPVS_SVC_ATTR_SCHED_NAME, "wrr", 4);
    struct ip_vs_flags flags = {.flags = 0, .mask = ~0u};
    attr(IPVS_SVC_ATTR_FLAGS, &flags, sizeof flags);
    attr_u32(IPVS_SVC_ATTR_TIMEOUT, 0);
    attr_u32(IPVS_SVC_ATTR_NETMASK, 0xffffffffu);
    close_nest(svc);
    finish(h);
    pending++;
    for (int r = 0; r < n_real; r++) {
      h = begin(family, ACK, IPVS_CMD_NEW_DEST);
      svc = open_nest(IPVS_CMD_ATTR_SERVICE);
      service_key(s);
      close_nest(svc);
      struct nlattr *dest = open_nest(IPVS_CMD_ATTR_DEST);
      struct addr16 a;
      memset(&a, 0, sizeof a);
      a.ip = htonl((10u << 24) | (2u << 16) | ((unsigned)(s % 200) << 8) | (unsigned)(r + 1));
      attr(IPVS_DEST_ATTR_ADDR, &a, sizeof a);
      attr_u16(IPVS_DEST_ATTR_PORT, htons(80));
      attr_u32(IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_DROUTE);
      attr_u32(IPVS_DEST_ATTR_WEIGHT, 1);
      attr_u32(IPVS_DEST_ATTR_U_THRESH, 0);
      attr_u32(IPVS_DEST_ATTR_L_THRESH, 0);
      close_nest(dest);
      finish(h);
      pending++;
      if (pending == batch) { send_out(); errors += read_acks(pending); pending = 0; }
    }
    if (pending >= batch) { send_out(); errors += read_acks(pending); pending = 0; }
  }
  if (pending) { send_out(); errors += read_acks(pending); }
  return errors;
}

/* ---- dump ---- */

static int n_services, n_dests;
static char keys[1 << 22];  /* each dumped service's key attributes, back to back */
static size_t keys_len;

static void service_reply(struct nlmsghdr *h) {
  char *body = (char *)NLMSG_DATA(h) + GENL_HDRLEN;
  struct nlattr *svc = find(body, (int)(h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN), IPVS_CMD_ATTR_SERVICE);
  if (!svc) return;
  n_services++;
  /* Keep the attributes that identify it: family, protocol, address, port or mark. */
  char *inner = (char *)svc + NLA_HDRLEN;
  int len = svc->nla_len - NLA_HDRLEN;
  size_t start = keys_len + 4;
  uint16_t types[] = {IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_PORT, IPVS_SVC_ATTR_FWMARK};
  size_t at = start;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    struct nlattr *a = find(inner, len, types[i]);
    if (!a || at + NLA_ALIGN(a->nla_len) > sizeof keys) continue;
    memcpy(keys + at, a, a->nla_len);
    at += NLA_ALIGN(a->nla_len);
  }
  uint32_t size = (uint32_t)(at - start);
  memcpy(keys + keys_len, &size, 4);
  keys_len = at;
}

static void dest_reply(struct nlmsghdr *h) { (void)h; n_dests++; }

static void dump_all(void) {
  finish(begin(family, NLM_F_DUMP, IPVS_CMD_GET_SERVICE));
  dump(service_reply);
  for (size_t at = 0; at < keys_len;) {
    uint32_t size;
    memcpy(&size, keys + at, 4);
    struct nlmsghdr *h = begin(family, NLM_F_DUMP, IPVS_CMD_GET_DEST);
    struct nlattr *svc = open_nest(IPVS_CMD_ATTR_SERVICE);
    memcpy(reserve(size), keys + at + 4, size);
    close_nest(svc);
    finish(h);
    dump(dest_reply);
    at += 4 + size;
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "add") && strcmp(argv[1], "dump")) || (!strcmp(argv[1], "add") && argc < 4)) {
    fprintf(stderr, "usage: ipvs-floor add N R [BATCH] | ipvs-floor dump\n");
    return 2;
  }
  sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  int rcvbuf = 4 << 20;
  setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_nl self = {.nl_family = AF_NETLINK};
  if (sock < 0 || bind(sock, (struct sockaddr *)&self, sizeof self)) { perror("netlink socket"); return 1; }
  resolve_family();
  double t0 = ms_now();
  if (!strcmp(argv[1], "add")) {
    int n = atoi(argv[2]), r = atoi(argv[3]), batch = argc > 4 ? atoi(argv[4]) : 256;
    if (batch < 1) batch = 1;
    int errors = add(n, r, batch);
    fprintf(stderr, "add %d x %d: %.0f ms, %d errors\n", n, r, ms_now() - t0, errors);
    return errors ? 1 : 0;
  }
  dump_all();
  printf("%d services, %d real servers\n", n_services, n_dests);
  fprintf(stderr, "dump: %d services, %d real servers: %.0f ms\n", n_services, n_dests, ms_now() - t0);
  return 0;
}
