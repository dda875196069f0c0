// Native helpers for @cnm/osl: work that must run inside a network namespace without a process launch.
//
// Every operation runs on a fresh pthread started from a libuv worker: the thread joins (setns) or creates
// (unshare) the namespace, does its work and exits, so neither the main thread nor a pooled worker ever
// changes namespace. The main thread only marshals arguments and settles a promise.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_STR 4096

enum job_kind { JOB_SOCKET = 1, JOB_CREATE = 2, JOB_SYSCTL = 3, JOB_UNMOUNT = 4, JOB_NETLINK = 5, JOB_CONNECT = 6 };

typedef struct {
  enum job_kind kind;
  napi_async_work work;
  napi_deferred deferred;
  char *ns_path; /* namespace to enter; NULL = stay in the process's namespace */
  /* socket */
  int family, socktype, port, reuse, backlog;
  char address[INET6_ADDRSTRLEN + 1];
  int out_fd, out_port;
  int timeout_ms;
  napi_threadsafe_function tsfn; /* JOB_CONNECT settles from its own thread */
  /* create / unmount */
  char *path;
  int lo_up;
  /* sysctl (also applied by create) */
  size_t nwrites;
  char **wkeys, **wvals;
  size_t nreads;
  char **rkeys, **rvals;
  /* netlink ops: nops operations of up to 8 string fields each */
  size_t nops;
  char ***ops;
  size_t *opn;
  int failed_op;
  /* result */
  int err;
  char msg[512];
} job_t;

static void fail(job_t *j, int err, const char *what, const char *arg) {
  j->err = err;
  snprintf(j->msg, sizeof j->msg, "%s(%s): %s", what, arg ? arg : "", strerror(err));
}

/* Reads `rkeys` (values before any write), then writes `wkeys`. */
static int write_sysctls(job_t *j) {
  char path[MAX_STR];
  for (size_t i = 0; i < j->nreads; i++) {
    snprintf(path, sizeof path, "/proc/sys/%s", j->rkeys[i]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fail(j, errno, "open", path);
      return -1;
    }
    char buf[MAX_STR];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
      fail(j, e, "read", path);
      return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
    buf[n] = 0;
    j->rvals[i] = strdup(buf);
  }
  for (size_t i = 0; i < j->nwrites; i++) {
    snprintf(path, sizeof path, "/proc/sys/%s", j->wkeys[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      fail(j, errno, "open", path);
      return -1;
    }
    size_t len = strlen(j->wvals[i]);
    ssize_t n = write(fd, j->wvals[i], len);
    int e = errno;
    close(fd);
    if (n < 0 || (size_t)n != len) {
      fail(j, n < 0 ? e : EIO, "write", path);
      return -1;
    }
  }
  return 0;
}

static int loopback_up(job_t *j) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    fail(j, errno, "socket", "lo");
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
    fail(j, errno, "ioctl", "lo up");
    close(s);
    return -1;
  }
  close(s);
  return 0;
}

static void do_socket(job_t *j) {
  int s = socket(j->family, j->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) {
    fail(j, errno, "socket", j->address);
    return;
  }
  int one = 1;
  if ((j->reuse & 1) && setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    fail(j, errno, "setsockopt", "SO_REUSEADDR");
    close(s);
    return;
  }
  if ((j->reuse & 2) && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    fail(j, errno, "setsockopt", "SO_REUSEPORT");
    close(s);
    return;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (j->family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)j->port);
    if (inet_pton(AF_INET, j->address, &sin->sin_addr) != 1) {
      fail(j, EINVAL, "inet_pton", j->address);
      close(s);
      return;
    }
    len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)j->port);
    if (inet_pton(AF_INET6, j->address, &sin6->sin6_addr) != 1) {
      fail(j, EINVAL, "inet_pton", j->address);
      close(s);
      return;
    }
    /* an explicit IPv6 socket: do not also take the IPv4 port */
    if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) {
      fail(j, errno, "setsockopt", "IPV6_V6ONLY");
      close(s);
      return;
    }
    len = sizeof *sin6;
  }
  if (bind(s, (struct sockaddr *)&ss, len) < 0) {
    fail(j, errno, "bind", j->address);
    close(s);
    return;
  }
  if (j->socktype == SOCK_STREAM && listen(s, j->backlog) < 0) {
    fail(j, errno, "listen", j->address);
    close(s);
    return;
  }
  len = sizeof ss;
  if (getsockname(s, (struct sockaddr *)&ss, &len) < 0) {
    fail(j, errno, "getsockname", j->address);
    close(s);
    return;
  }
  j->out_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
  j->out_fd = s;
}


/* ---- minimal rtnetlink: the in-namespace half of an attach (addresses, link up, routes) ---- */

typedef struct {
  struct nlmsghdr n;
  union {
    struct ifaddrmsg a;
    struct rtmsg r;
    struct ifinfomsg i;
  } u;
  char buf[1024];
} nlreq_t;

static void addattr(struct nlmsghdr *n, int type, const void *data, int len) {
  struct rtattr *rta = (struct rtattr *)(((char *)n) + NLMSG_ALIGN(n->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(rta), data, len);
  n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static struct rtattr *nest_start(struct nlmsghdr *n, int type) {
  struct rtattr *nest = (struct rtattr *)(((char *)n) + NLMSG_ALIGN(n->nlmsg_len));
  addattr(n, type, NULL, 0);
  return nest;
}

static void nest_end(struct nlmsghdr *n, struct rtattr *nest) {
  nest->rta_len = (unsigned short)((char *)n + NLMSG_ALIGN(n->nlmsg_len) - (char *)nest);
}

static int parse_mac(const char *s, unsigned char *mac) {
  unsigned v[6];
  if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (unsigned char)v[i];
  return 0;
}

/* sends one request and waits for its ack; returns 0 or a positive errno */
static int nl_talk(int fd, struct nlmsghdr *n, unsigned seq) {
  n->nlmsg_seq = seq;
  n->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (sendto(fd, n, n->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) return errno;
  char buf[8192];
  for (;;) {
    ssize_t len = recv(fd, buf, sizeof buf, 0);
    if (len < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        return -e->error;
      }
    }
  }
}

static int parse_addr(const char *s, int *family, unsigned char *out) {
  if (inet_pton(AF_INET, s, out) == 1) {
    *family = AF_INET;
    return 4;
  }
  if (inet_pton(AF_INET6, s, out) == 1) {
    *family = AF_INET6;
    return 16;
  }
  return -1;
}

/* one op; fields: addr DEV IP PREFIXLEN NODAD | up DEV | route DST|"" PREFIXLEN FAMILY GW|"" DEV|"" SCOPE ONLINK */
static int nl_op(job_t *j, int fd, size_t k) {
  char **f = j->ops[k];
  size_t n = j->opn[k];
  nlreq_t req;
  memset(&req, 0, sizeof req);
  unsigned char a[16];
  int fam = 0;
  if (n >= 2 && strcmp(f[0], "up") == 0) {
    unsigned idx = if_nametoindex(f[1]);
    if (idx == 0) return snprintf(j->msg, sizeof j->msg, "Cannot find device \"%s\"", f[1]), ENODEV;
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    req.n.nlmsg_type = RTM_NEWLINK;
    req.u.i.ifi_family = AF_UNSPEC;
    req.u.i.ifi_index = (int)idx;
    req.u.i.ifi_flags = IFF_UP;
    req.u.i.ifi_change = IFF_UP;
  } else if (n >= 5 && strcmp(f[0], "addr") == 0) {
    unsigned idx = if_nametoindex(f[1]);
    if (idx == 0) return snprintf(j->msg, sizeof j->msg, "Cannot find device \"%s\"", f[1]), ENODEV;
    int alen = parse_addr(f[2], &fam, a);
    if (alen < 0) return snprintf(j->msg, sizeof j->msg, "invalid address %s", f[2]), EINVAL;
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.n.nlmsg_type = RTM_NEWADDR;
    req.n.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    req.u.a.ifa_family = fam;
    req.u.a.ifa_prefixlen = (unsigned char)atoi(f[3]);
    req.u.a.ifa_index = idx;
    if (strcmp(f[4], "1") == 0) req.u.a.ifa_flags = IFA_F_NODAD;
    addattr(&req.n, IFA_LOCAL, a, alen);
    addattr(&req.n, IFA_ADDRESS, a, alen);
    if (fam == AF_INET && req.u.a.ifa_prefixlen < 31) {
      uint32_t ip, mask = req.u.a.ifa_prefixlen == 0 ? 0 : htonl(~0u << (32 - req.u.a.ifa_prefixlen));
      memcpy(&ip, a, 4);
      uint32_t brd = ip | ~mask;
      addattr(&req.n, IFA_BROADCAST, &brd, 4);
    }
    if (strcmp(f[4], "1") == 0) {
      uint32_t flags = IFA_F_NODAD;
      addattr(&req.n, IFA_FLAGS, &flags, 4);
    }
  } else if (n >= 8 && strcmp(f[0], "route") == 0) {
    int plen = atoi(f[2]);
    fam = strcmp(f[3], "6") == 0 ? AF_INET6 : AF_INET;
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.n.nlmsg_type = RTM_NEWROUTE;
    req.n.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    req.u.r.rtm_family = fam;
    req.u.r.rtm_dst_len = (unsigned char)plen;
    req.u.r.rtm_table = RT_TABLE_MAIN;
    req.u.r.rtm_protocol = RTPROT_BOOT;
    req.u.r.rtm_type = RTN_UNICAST;
    req.u.r.rtm_scope = strcmp(f[6], "link") == 0 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    if (strcmp(f[7], "1") == 0) req.u.r.rtm_flags |= RTNH_F_ONLINK;
    if (f[1][0] != 0) {
      int df;
      int alen = parse_addr(f[1], &df, a);
      if (alen < 0 || df != fam) return snprintf(j->msg, sizeof j->msg, "invalid destination %s", f[1]), EINVAL;
      addattr(&req.n, RTA_DST, a, alen);
    }
    if (f[4][0] != 0) {
      int gf;
      int alen = parse_addr(f[4], &gf, a);
      if (alen < 0 || gf != fam) return snprintf(j->msg, sizeof j->msg, "invalid gateway %s", f[4]), EINVAL;
      addattr(&req.n, RTA_GATEWAY, a, alen);
    }
    if (f[5][0] != 0) {
      unsigned idx = if_nametoindex(f[5]);
      if (idx == 0) return snprintf(j->msg, sizeof j->msg, "Cannot find device \"%s\"", f[5]), ENODEV;
      uint32_t oif = idx;
      addattr(&req.n, RTA_OIF, &oif, 4);
    }

  } else if (n >= 10 && strcmp(f[0], "veth") == 0) {
    /* veth NAME MAC MTU MASTER UP PEER PEERMAC PEERMTU PEERNETNS (empty = unset) */
    unsigned char mac[6];
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    req.n.nlmsg_type = RTM_NEWLINK;
    req.n.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    req.u.i.ifi_family = AF_UNSPEC;
    if (strcmp(f[5], "1") == 0) {
      req.u.i.ifi_flags = IFF_UP;
      req.u.i.ifi_change = IFF_UP;
    }
    addattr(&req.n, IFLA_IFNAME, f[1], (int)strlen(f[1]) + 1);
    if (f[2][0] != 0) {
      if (parse_mac(f[2], mac) < 0) return snprintf(j->msg, sizeof j->msg, "invalid MAC %s", f[2]), EINVAL;
      addattr(&req.n, IFLA_ADDRESS, mac, 6);
    }
    if (f[3][0] != 0) {
      uint32_t mtu = (uint32_t)atoi(f[3]);
      addattr(&req.n, IFLA_MTU, &mtu, 4);
    }
    if (f[4][0] != 0) {
      unsigned idx = if_nametoindex(f[4]);
      if (idx == 0) return snprintf(j->msg, sizeof j->msg, "Cannot find device \"%s\"", f[4]), ENODEV;
      uint32_t m = idx;
      addattr(&req.n, IFLA_MASTER, &m, 4);
    }
    struct rtattr *linkinfo = nest_start(&req.n, IFLA_LINKINFO);
    addattr(&req.n, IFLA_INFO_KIND, "veth", 4);
    struct rtattr *data = nest_start(&req.n, IFLA_INFO_DATA);
    struct rtattr *peer = nest_start(&req.n, VETH_INFO_PEER);
    req.n.nlmsg_len += sizeof(struct ifinfomsg); /* the peer's (zeroed) ifinfomsg */
    addattr(&req.n, IFLA_IFNAME, f[6], (int)strlen(f[6]) + 1);
    if (f[7][0] != 0) {
      if (parse_mac(f[7], mac) < 0) return snprintf(j->msg, sizeof j->msg, "invalid MAC %s", f[7]), EINVAL;
      addattr(&req.n, IFLA_ADDRESS, mac, 6);
    }
    if (f[8][0] != 0) {
      uint32_t mtu = (uint32_t)atoi(f[8]);
      addattr(&req.n, IFLA_MTU, &mtu, 4);
    }
    int nsfd = -1;
    if (f[9][0] != 0) {
      nsfd = open(f[9], O_RDONLY | O_CLOEXEC);
      if (nsfd < 0) {
        int e = errno;
        return snprintf(j->msg, sizeof j->msg, "Cannot open network namespace \"%s\": %s", f[9], strerror(e)), e;
      }
      uint32_t v = (uint32_t)nsfd;
      addattr(&req.n, IFLA_NET_NS_FD, &v, 4);
    }
    nest_end(&req.n, peer);
    nest_end(&req.n, data);
    nest_end(&req.n, linkinfo);
    int e = nl_talk(fd, &req.n, (unsigned)k + 1);
    if (nsfd >= 0) close(nsfd);
    if (e != 0) snprintf(j->msg, sizeof j->msg, "RTNETLINK answers: %s", strerror(e));
    return e;
  } else {
    return snprintf(j->msg, sizeof j->msg, "unknown netlink op"), EINVAL;
  }
  int e = nl_talk(fd, &req.n, (unsigned)k + 1);
  if (e != 0) snprintf(j->msg, sizeof j->msg, "RTNETLINK answers: %s", strerror(e));
  return e;
}

static void do_netlink(job_t *j) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    fail(j, errno, "socket", "NETLINK_ROUTE");
    j->failed_op = -1;
    return;
  }
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    fail(j, errno, "bind", "NETLINK_ROUTE");
    j->failed_op = -1;
    close(fd);
    return;
  }
  for (size_t k = 0; k < j->nops; k++) {
    int e = nl_op(j, fd, k);
    if (e != 0) {
      j->err = e;
      j->failed_op = (int)k;
      break;
    }
  }
  close(fd);
}


/* connect: a TCP socket created inside the namespace and connected to address:port within timeout_ms */
static void do_connect(job_t *j) {
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (j->family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)j->port);
    if (inet_pton(AF_INET, j->address, &sin->sin_addr) != 1) {
      fail(j, EINVAL, "inet_pton", j->address);
      return;
    }
    len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)j->port);
    if (inet_pton(AF_INET6, j->address, &sin6->sin6_addr) != 1) {
      fail(j, EINVAL, "inet_pton", j->address);
      return;
    }
    len = sizeof *sin6;
  }
  int s = socket(j->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) {
      fail(j, errno, "socket", j->address);
      return;
    }
  if (connect(s, (struct sockaddr *)&ss, len) < 0) {
    if (errno != EINPROGRESS) {
      fail(j, errno, "connect", j->address);
      close(s);
      return;
    }
    struct pollfd pfd = {.fd = s, .events = POLLOUT};
    int r;
    do r = poll(&pfd, 1, j->timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      fail(j, ETIMEDOUT, "connect", j->address);
      close(s);
      return;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (r < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
      fail(j, r < 0 ? errno : (soerr != 0 ? soerr : errno), "connect", j->address);
      close(s);
      return;
    }
  }
  j->out_fd = s;
  j->out_port = j->port;
}

static void do_create(job_t *j) {
  int fd = open(j->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    fail(j, errno, "create", j->path);
    return;
  }
  close(fd);
  if (unshare(CLONE_NEWNET) < 0) {
    fail(j, errno, "unshare", "CLONE_NEWNET");
    unlink(j->path);
    return;
  }
  char self[128];
  snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
  if (mount(self, j->path, "none", MS_BIND, NULL) < 0) {
    fail(j, errno, "mount", j->path);
    unlink(j->path);
    return;
  }
  if ((j->lo_up && loopback_up(j) < 0) || write_sysctls(j) < 0) {
    umount2(j->path, MNT_DETACH);
    unlink(j->path);
  }
}

static void do_unmount(job_t *j) {
  if (umount2(j->path, MNT_DETACH) < 0) fail(j, errno, "umount", j->path);
}

static void run_job(job_t *j) {
  if (j->kind == JOB_CREATE) {
    do_create(j);
    return;
  }
  if (j->kind == JOB_UNMOUNT) {
    do_unmount(j);
    return;
  }
  if (j->ns_path != NULL) {
    int fd = open(j->ns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fail(j, errno, "netns", j->ns_path);
      return;
    }
    int r = setns(fd, CLONE_NEWNET);
    int e = errno;
    close(fd);
    if (r < 0) {
      fail(j, e, "setns", j->ns_path);
      return;
    }
  }
  if (j->kind == JOB_SOCKET) do_socket(j);
  else if (j->kind == JOB_SYSCTL) write_sysctls(j);
  else if (j->kind == JOB_NETLINK) do_netlink(j);
  else if (j->kind == JOB_CONNECT) do_connect(j);
}

static void *thread_main(void *arg) {
  job_t *j = arg;
  run_job(j);
  if (j->kind == JOB_CONNECT) {
    /* settle on the JS thread; the threadsafe function keeps the loop alive until then */
    napi_call_threadsafe_function(j->tsfn, j, napi_tsfn_blocking);
    napi_release_threadsafe_function(j->tsfn, napi_tsfn_release);
  }
  return NULL;
}

/* libuv worker: run the job on a throw-away thread so the worker's namespace never changes. */
static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  pthread_t t;
  int r = pthread_create(&t, NULL, thread_main, j);
  if (r != 0) {
    fail(j, r, "pthread_create", "");
    return;
  }
  pthread_join(t, NULL);
}

static void free_strv(char **v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static void free_job(job_t *j) {
  for (size_t k = 0; k < j->nops; k++) free_strv(j->ops[k], j->opn[k]);
  free(j->ops);
  free(j->opn);
  free(j->ns_path);
  free(j->path);
  free_strv(j->wkeys, j->nwrites);
  free_strv(j->wvals, j->nwrites);
  free_strv(j->rkeys, j->nreads);
  free_strv(j->rvals, j->nreads);
  free(j);
}

static const char *errno_code(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EBUSY: return "EBUSY";
    case ENOTDIR: return "ENOTDIR";
    case EMFILE: return "EMFILE";
    case ENODEV: return "ENODEV";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case ESRCH: return "ESRCH";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EUNKNOWN";
  }
}

static void settle(napi_env env, job_t *j) {
  napi_value result = NULL;
  if (j->err != 0) {
    napi_value code, msg, err, errnum;
    napi_create_string_utf8(env, errno_code(j->err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, j->msg, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &err);
    napi_create_int32(env, j->err, &errnum);
    napi_set_named_property(env, err, "errno", errnum);
    if (j->kind == JOB_NETLINK) {
      napi_value idx;
      napi_create_int32(env, j->failed_op, &idx);
      napi_set_named_property(env, err, "index", idx);
    }
    napi_reject_deferred(env, j->deferred, err);
  } else {
    if (j->kind == JOB_SOCKET || j->kind == JOB_CONNECT) {
      napi_value fd, port;
      napi_create_object(env, &result);
      napi_create_int32(env, j->out_fd, &fd);
      napi_create_int32(env, j->out_port, &port);
      napi_set_named_property(env, result, "fd", fd);
      napi_set_named_property(env, result, "port", port);
    } else if (j->kind == JOB_SYSCTL) {
      napi_create_array_with_length(env, j->nreads, &result);
      for (size_t i = 0; i < j->nreads; i++) {
        napi_value v;
        napi_create_string_utf8(env, j->rvals[i] ? j->rvals[i] : "", NAPI_AUTO_LENGTH, &v);
        napi_set_element(env, result, (uint32_t)i, v);
      }
    } else {
      napi_get_undefined(env, &result);
    }
    napi_resolve_deferred(env, j->deferred, result);
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (status != napi_ok && j->err == 0) fail(j, ECANCELED, "async", "");
  settle(env, j);
  napi_delete_async_work(env, j->work);
  free_job(j);
}

static void connect_done(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  job_t *j = data;
  if (env != NULL) settle(env, j);
  else if (j->out_fd >= 0) close(j->out_fd); /* environment gone: nobody will adopt the descriptor */
  free_job(j);
}

/* ---- argument helpers ---- */

static int get_str(napi_env env, napi_value v, char **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) {
    *out = NULL;
    return 0;
  }
  if (t != napi_string) return -1;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len >= MAX_STR) return -1;
  *out = malloc(len + 1);
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  return 0;
}

static int get_int(napi_env env, napi_value v, int *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static int get_strv(napi_env env, napi_value arr, char ***out, size_t *n) {
  uint32_t len;
  bool is;
  if (napi_is_array(env, arr, &is) != napi_ok || !is) return -1;
  napi_get_array_length(env, arr, &len);
  *out = calloc(len ? len : 1, sizeof(char *));
  *n = len;
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    if (get_str(env, e, &(*out)[i]) < 0 || (*out)[i] == NULL) return -1;
  }
  return 0;
}

static napi_value start(napi_env env, job_t *j, const char *name) {
  napi_value promise, resource;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value bad_args(napi_env env, job_t *j, const char *what) {
  free_job(j);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

/* openSocket(nsPath|null, family 4|6, tcp bool, address, port, reuse bits (1 SO_REUSEADDR, 2 SO_REUSEPORT), backlog) */
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  j->kind = JOB_SOCKET;
  j->out_fd = -1;
  int fam, tcp, reuse;
  char *addr = NULL;
  if (argc < 7 || get_str(env, argv[0], &j->ns_path) < 0 || get_int(env, argv[1], &fam) < 0 ||
      get_int(env, argv[2], &tcp) < 0 || get_str(env, argv[3], &addr) < 0 || addr == NULL ||
      get_int(env, argv[4], &j->port) < 0 || get_int(env, argv[5], &reuse) < 0 ||
      get_int(env, argv[6], &j->backlog) < 0 || strlen(addr) > INET6_ADDRSTRLEN) {
    free(addr);
    return bad_args(env, j, "openSocket(nsPath, family, tcp, address, port, reuseAddr, backlog)");
  }
  strcpy(j->address, addr);
  free(addr);
  j->family = fam == 6 ? AF_INET6 : AF_INET;
  j->socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
  j->reuse = reuse;
  return start(env, j, "cnm_osl.openSocket");
}

/* connectSocket(nsPath|null, family 4|6, address, port, timeoutMs) -> Promise<{fd, port}>: runs on its own
   detached thread (a slow connect must not hold a libuv worker) and settles through a threadsafe function */
static napi_value connect_socket(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  j->kind = JOB_CONNECT;
  j->out_fd = -1;
  int fam;
  char *addr = NULL;
  if (argc < 5 || get_str(env, argv[0], &j->ns_path) < 0 || get_int(env, argv[1], &fam) < 0 ||
      get_str(env, argv[2], &addr) < 0 || addr == NULL || get_int(env, argv[3], &j->port) < 0 ||
      get_int(env, argv[4], &j->timeout_ms) < 0 || strlen(addr) > INET6_ADDRSTRLEN) {
    free(addr);
    return bad_args(env, j, "connectSocket(nsPath, family, address, port, timeoutMs)");
  }
  strcpy(j->address, addr);
  free(addr);
  j->family = fam == 6 ? AF_INET6 : AF_INET;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "cnm_osl.connectSocket", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, connect_done, &j->tsfn) != napi_ok) {
    fail(j, ENOMEM, "napi_create_threadsafe_function", "");
    settle(env, j);
    free_job(j);
    return promise;
  }
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int r = pthread_create(&t, &attr, thread_main, j);
  pthread_attr_destroy(&attr);
  if (r != 0) {
    napi_release_threadsafe_function(j->tsfn, napi_tsfn_abort);
    fail(j, r, "pthread_create", "");
    settle(env, j);
    free_job(j);
  }
  return promise;
}

/* createNetns(path, loUp bool(int), sysctlKeys[], sysctlValues[]) */
static napi_value create_netns(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  j->kind = JOB_CREATE;
  size_t nv = 0;
  if (argc < 4 || get_str(env, argv[0], &j->path) < 0 || j->path == NULL || get_int(env, argv[1], &j->lo_up) < 0 ||
      get_strv(env, argv[2], &j->wkeys, &j->nwrites) < 0 || get_strv(env, argv[3], &j->wvals, &nv) < 0 ||
      nv != j->nwrites)
    return bad_args(env, j, "createNetns(path, loUp, keys, values)");
  return start(env, j, "cnm_osl.createNetns");
}

/* sysctl(nsPath|null, writeKeys[], writeValues[], readKeys[]) -> Promise<string[]>: reads happen before the writes */
static napi_value sysctl(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  j->kind = JOB_SYSCTL;
  size_t nv = 0;
  if (argc < 4 || get_str(env, argv[0], &j->ns_path) < 0 || get_strv(env, argv[1], &j->wkeys, &j->nwrites) < 0 ||
      get_strv(env, argv[2], &j->wvals, &nv) < 0 || nv != j->nwrites ||
      get_strv(env, argv[3], &j->rkeys, &j->nreads) < 0)
    return bad_args(env, j, "sysctl(nsPath, writeKeys, writeValues, readKeys)");
  j->rvals = calloc(j->nreads ? j->nreads : 1, sizeof(char *));
  return start(env, j, "cnm_osl.sysctl");
}

/* unmount(path): lazy unmount of a namespace file */
static napi_value unmount_netns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  j->kind = JOB_UNMOUNT;
  if (argc < 1 || get_str(env, argv[0], &j->path) < 0 || j->path == NULL) return bad_args(env, j, "unmount(path)");
  return start(env, j, "cnm_osl.unmount");
}

/* netlink(nsPath|null, ops: string[][]) -> Promise<void>; rejects with .index = failed op (-1: before any) */
static napi_value netlink_ops(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  j->kind = JOB_NETLINK;
  uint32_t len = 0;
  bool is = false;
  if (argc < 2 || get_str(env, argv[0], &j->ns_path) < 0 || napi_is_array(env, argv[1], &is) != napi_ok || !is)
    return bad_args(env, j, "netlink(nsPath, ops)");
  napi_get_array_length(env, argv[1], &len);
  j->ops = calloc(len ? len : 1, sizeof(char **));
  j->opn = calloc(len ? len : 1, sizeof(size_t));
  for (uint32_t k = 0; k < len; k++) {
    napi_value op;
    napi_get_element(env, argv[1], k, &op);
    j->nops = k + 1;
    if (get_strv(env, op, &j->ops[k], &j->opn[k]) < 0) return bad_args(env, j, "netlink(nsPath, ops): ops are string arrays");
  }
  j->nops = len;
  return start(env, j, "cnm_osl.netlink");
}

void cnm_dns_responder_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openSocket", NULL, open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"createNetns", NULL, create_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sysctl", NULL, sysctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmount", NULL, unmount_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netlink", NULL, netlink_ops, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectSocket", NULL, connect_socket, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  cnm_dns_responder_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
