// DNS responder engine for @cnm/osl: worker threads that own UDP sockets, answer DNS queries whose
// question is in a per-socket table of pre-encoded answers with recvmmsg/sendmmsg batches, and hand every
// other datagram to JavaScript (which stays the source of truth: it fills the table and answers the rest).
//
// Threads: an engine has T worker threads, each with its own epoll set. A responder (one per resolver) owns
// one or more sockets (several when they share a port with SO_REUSEPORT); socket k is served by thread k % T.
// Locking: `slots_lock` (rwlock, writers preferred) guards the slot array: workers hold it for reading while
// they use a responder; attach/detach hold it for writing, so after detach no worker can still touch the
// responder. Each responder's `mu` guards its answer table against updates from the JS thread.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define R_BATCH 32        /* datagrams per recvmmsg / sendmmsg */
#define R_SLOT 4096       /* receive and reply buffer per datagram */
#define R_MAX_FDS 16      /* sockets per responder */
#define R_MAX_THREADS 8
#define R_KEY_MAX 260     /* folded name (<= 255) + qtype (2) */
#define R_MISS_QUEUE 256  /* miss batches queued for the JS thread before datagrams are dropped */
#define STOP_TOKEN UINT64_MAX

typedef struct entry {
  struct entry *next;
  uint32_t hash;
  uint16_t keylen;
  uint8_t key[R_KEY_MAX];
  uint8_t rcode;
  uint8_t rotate;
  uint16_t ancount, arcount;
  uint32_t bodylen;
  uint8_t *body;
  uint16_t *offs; /* rotate: ancount + 1 record offsets into body */
} entry_t;

typedef struct {
  uint64_t received, answered, missed, dropped, send_errors, rejected_entries;
} rstats_t;

typedef struct responder {
  uint32_t index, gen;
  int nfds;
  int fds[R_MAX_FDS];
  int family;
  uint16_t edns_size, max_udp;
  pthread_mutex_t mu;
  entry_t **buckets;
  uint32_t nbuckets, count, max_entries;
  rstats_t st;
  napi_ref on_miss;
  uint32_t rng;
} responder_t;

typedef struct engine engine_t;

typedef struct {
  engine_t *eng;
  int id;
  int epfd;
  pthread_t thread;
  int started;
  /* buffers (thread-private) */
  struct mmsghdr in[R_BATCH], out[R_BATCH];
  struct iovec iin[R_BATCH], iout[R_BATCH];
  struct sockaddr_storage addr[R_BATCH];
  uint8_t ibuf[R_BATCH][R_SLOT];
  uint8_t obuf[R_BATCH][R_SLOT];
  uint32_t rng;
} worker_t;

/* a batch of datagrams for the JS thread */
typedef struct {
  uint32_t count, used, cap;
  uint8_t *data; /* items: u32 index, u32 gen, u16 port, u16 len, char addr[46], payload */
} miss_t;

struct engine {
  napi_env env;
  int nthreads;
  int stopfd;
  worker_t *w[R_MAX_THREADS];
  pthread_rwlock_t slots_lock;
  responder_t **slots;
  uint32_t nslots;
  napi_threadsafe_function tsfn;
  int closed;
  uint32_t next_gen;
};

static uint32_t fnv(const uint8_t *k, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
  return h;
}

static uint32_t xorshift(uint32_t *s) {
  uint32_t x = *s ? *s : 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

static void free_entry(entry_t *e) {
  free(e->body);
  free(e->offs);
  free(e);
}

static void table_clear(responder_t *r) {
  for (uint32_t b = 0; b < r->nbuckets; b++) {
    entry_t *e = r->buckets[b];
    while (e) {
      entry_t *n = e->next;
      free_entry(e);
      e = n;
    }
    r->buckets[b] = NULL;
  }
  r->count = 0;
}

static entry_t *table_find(responder_t *r, const uint8_t *key, size_t n, uint32_t h, entry_t ***link) {
  entry_t **p = &r->buckets[h & (r->nbuckets - 1)];
  for (; *p; p = &(*p)->next) {
    if ((*p)->hash == h && (*p)->keylen == n && memcmp((*p)->key, key, n) == 0) break;
  }
  if (link) *link = p;
  return *p;
}

/* ---- the per-datagram fast path ---- */

/* Builds the reply in `out` when the query at `q` (len bytes) is a plain QUERY for one IN question found in the
   table and the reply fits; returns its length, or 0 to hand the datagram to JS. Must agree with the JS resolver
   for every case it answers (parseQuery, decide, encodeLocal). Caller holds r->mu. */
static size_t answer(responder_t *r, const uint8_t *q, size_t len, uint8_t *out, uint32_t *rng) {
  if (len < 12) return 0;
  uint8_t b2 = q[2];
  if (b2 & 0x80) return 0;          /* a response */
  if ((b2 >> 3) & 0x0f) return 0;   /* opcode */
  if (q[4] != 0 || q[5] != 1) return 0;
  if (q[6] | q[7] | q[8] | q[9] | q[10]) return 0;
  uint8_t ar = q[11];
  if (ar > 1) return 0;
  uint8_t key[R_KEY_MAX];
  size_t k = 0, o = 12;
  for (;;) {
    if (o >= len) return 0;
    uint8_t l = q[o];
    if (l == 0) {
      key[k++] = 0;
      o++;
      break;
    }
    if (l > 63) return 0;
    size_t end = o + 1 + l;
    if (end > len || end - 12 >= 255) return 0;
    key[k++] = l;
    for (size_t i = o + 1; i < end; i++) {
      uint8_t c = q[i];
      key[k++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c | 0x20) : c;
    }
    o = end;
  }
  if (o + 4 > len) return 0;
  uint16_t qclass = (uint16_t)((q[o + 2] << 8) | q[o + 3]);
  if (qclass != 1) return 0;
  key[k++] = q[o];
  key[k++] = q[o + 1];
  size_t qend = o + 4;
  int edns = 0;
  size_t limit = 512;
  if (ar == 1) {
    /* exactly one OPT, root owner, version 0 */
    size_t p = qend;
    if (p + 11 > len || q[p] != 0) return 0;
    if (q[p + 1] != 0 || q[p + 2] != 41) return 0;
    size_t rdlen = (size_t)((q[p + 9] << 8) | q[p + 10]);
    if (p + 11 + rdlen > len) return 0;
    if (q[p + 6] != 0) return 0; /* EDNS version: BADVERS is JS's */
    size_t size = (size_t)((q[p + 3] << 8) | q[p + 4]);
    if (size < 512) size = 512;
    limit = size < r->max_udp ? size : r->max_udp;
    edns = 1;
  }
  uint32_t h = fnv(key, k);
  entry_t *e = table_find(r, key, k, h, NULL);
  if (e == NULL) return 0;
  size_t total = qend + e->bodylen + (edns ? 11 : 0);
  if (total > limit || total > R_SLOT) return 0;
  uint16_t fl = (uint16_t)((b2 << 8) | q[3]);
  uint16_t flags = (uint16_t)(0x8000 | (fl & 0x0100) | 0x0080 | (fl & 0x0010) | (e->rcode & 0x0f));
  uint16_t arc = (uint16_t)(e->arcount + (edns ? 1 : 0));
  out[0] = q[0];
  out[1] = q[1];
  out[2] = (uint8_t)(flags >> 8);
  out[3] = (uint8_t)flags;
  out[4] = 0;
  out[5] = 1;
  out[6] = (uint8_t)(e->ancount >> 8);
  out[7] = (uint8_t)e->ancount;
  out[8] = 0;
  out[9] = 0;
  out[10] = (uint8_t)(arc >> 8);
  out[11] = (uint8_t)arc;
  memcpy(out + 12, q + 12, qend - 12); /* the question as the client spelled it */
  size_t w = qend;
  if (e->rotate && e->ancount > 1) {
    uint32_t n = e->ancount, start = xorshift(rng) % n;
    for (uint32_t c = 0; c < n; c++) {
      uint32_t i = (start + c) % n;
      size_t a = e->offs[i], b = e->offs[i + 1];
      memcpy(out + w, e->body + a, b - a);
      w += b - a;
    }
  } else {
    memcpy(out + w, e->body, e->bodylen);
    w += e->bodylen;
  }
  if (edns) {
    out[w] = 0;
    out[w + 1] = 0;
    out[w + 2] = 41;
    out[w + 3] = (uint8_t)(r->edns_size >> 8);
    out[w + 4] = (uint8_t)r->edns_size;
    out[w + 5] = (uint8_t)((e->rcode >> 4) & 0xff);
    memset(out + w + 6, 0, 5);
    w += 11;
  }
  return w;
}

static void miss_add(miss_t *m, responder_t *r, const struct sockaddr_storage *sa, const uint8_t *data, size_t len) {
  size_t need = 4 + 4 + 2 + 2 + 46 + len;
  if (m->used + need > m->cap) {
    uint32_t cap = m->cap ? m->cap * 2 : 16384;
    while (m->used + need > cap) cap *= 2;
    uint8_t *d = realloc(m->data, cap);
    if (!d) {
      r->st.dropped++;
      return;
    }
    m->data = d;
    m->cap = cap;
  }
  uint8_t *p = m->data + m->used;
  uint16_t port = 0;
  char addr[46] = {0};
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
    port = ntohs(s4->sin_port);
  } else if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
    port = ntohs(s6->sin6_port);
  }
  uint16_t l16 = (uint16_t)len;
  memcpy(p, &r->index, 4);
  memcpy(p + 4, &r->gen, 4);
  memcpy(p + 8, &port, 2);
  memcpy(p + 10, &l16, 2);
  memcpy(p + 12, addr, 46);
  memcpy(p + 58, data, len);
  m->used += (uint32_t)need;
  m->count++;
  r->st.missed++;
}

/* Drains one socket: batches of recvmmsg, answers in place, sendmmsg, misses to `m`. Caller holds slots_lock. */
static void serve_fd(worker_t *w, responder_t *r, int fd, miss_t *m) {
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < R_BATCH; i++) {
      w->iin[i].iov_base = w->ibuf[i];
      w->iin[i].iov_len = R_SLOT;
      memset(&w->in[i].msg_hdr, 0, sizeof w->in[i].msg_hdr);
      w->in[i].msg_hdr.msg_name = &w->addr[i];
      w->in[i].msg_hdr.msg_namelen = sizeof w->addr[i];
      w->in[i].msg_hdr.msg_iov = &w->iin[i];
      w->in[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, w->in, R_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return; /* EAGAIN (drained), EINTR or a pending socket error (ICMP): level-triggered epoll retries */
    int nout = 0;
    pthread_mutex_lock(&r->mu);
    r->st.received += (uint64_t)n;
    for (int i = 0; i < n; i++) {
      size_t len = w->in[i].msg_len;
      if (w->in[i].msg_hdr.msg_flags & MSG_TRUNC) {
        r->st.dropped++; /* larger than R_SLOT: not a DNS query we can answer */
        continue;
      }
      size_t rl = answer(r, w->ibuf[i], len, w->obuf[nout], &w->rng);
      if (rl == 0) {
        miss_add(m, r, &w->addr[i], w->ibuf[i], len);
        continue;
      }
      r->st.answered++;
      w->iout[nout].iov_base = w->obuf[nout];
      w->iout[nout].iov_len = rl;
      memset(&w->out[nout].msg_hdr, 0, sizeof w->out[nout].msg_hdr);
      w->out[nout].msg_hdr.msg_name = &w->addr[i];
      w->out[nout].msg_hdr.msg_namelen = w->in[i].msg_hdr.msg_namelen;
      w->out[nout].msg_hdr.msg_iov = &w->iout[nout];
      w->out[nout].msg_hdr.msg_iovlen = 1;
      nout++;
    }
    pthread_mutex_unlock(&r->mu);
    int sent = 0;
    while (sent < nout) {
      int s = sendmmsg(fd, w->out + sent, (unsigned)(nout - sent), MSG_DONTWAIT);
      if (s < 0) {
        if (errno == EINTR) continue;
        /* EAGAIN/ENOBUFS or a per-destination error on the first datagram: skip it */
        __atomic_fetch_add(&r->st.send_errors, 1, __ATOMIC_RELAXED);
        sent++;
        continue;
      }
      sent += s;
    }
    if (n < R_BATCH) return;
  }
}

static void deliver(engine_t *eng, miss_t *m) {
  if (m->count == 0) return;
  miss_t *copy = malloc(sizeof *copy);
  if (copy) {
    *copy = *m;
    m->data = NULL;
    m->cap = m->used = m->count = 0;
    if (napi_call_threadsafe_function(eng->tsfn, copy, napi_tsfn_nonblocking) == napi_ok) return;
    *m = *copy; /* queue full (JS is behind) or closing: drop this batch, keep the buffer */
    free(copy);
  }
  /* count the dropped datagrams on their responders */
  pthread_rwlock_rdlock(&eng->slots_lock);
  uint8_t *p = m->data;
  for (uint32_t i = 0; i < m->count; i++) {
    uint32_t idx, gen;
    uint16_t len;
    memcpy(&idx, p, 4);
    memcpy(&gen, p + 4, 4);
    memcpy(&len, p + 10, 2);
    p += 58 + len;
    responder_t *r = idx < eng->nslots ? eng->slots[idx] : NULL;
    if (r != NULL && r->gen == gen) {
      pthread_mutex_lock(&r->mu);
      r->st.missed--;
      r->st.dropped++;
      pthread_mutex_unlock(&r->mu);
    }
  }
  pthread_rwlock_unlock(&eng->slots_lock);
  m->used = m->count = 0;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  engine_t *eng = w->eng;
  struct epoll_event evs[64];
  miss_t m = {0};
  for (;;) {
    int n = epoll_wait(w->epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int stop = 0;
    pthread_rwlock_rdlock(&eng->slots_lock);
    for (int i = 0; i < n; i++) {
      uint64_t tok = evs[i].data.u64;
      if (tok == STOP_TOKEN) {
        stop = 1;
        continue;
      }
      uint32_t idx = (uint32_t)(tok >> 40), gen = (uint32_t)((tok >> 8) & 0xffffffffu), k = (uint32_t)(tok & 0xff);
      if (idx >= eng->nslots) continue;
      responder_t *r = eng->slots[idx];
      if (r == NULL || r->gen != gen || (int)k >= r->nfds) continue;
      serve_fd(w, r, r->fds[k], &m);
    }
    pthread_rwlock_unlock(&eng->slots_lock);
    deliver(eng, &m);
    if (stop) break;
  }
  free(m.data);
  return NULL;
}

/* ---- JS thread: miss delivery ---- */

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  engine_t *eng = context;
  miss_t *m = data;
  if (env != NULL && !eng->closed) {
    uint8_t *p = m->data;
    for (uint32_t i = 0; i < m->count; i++) {
      uint32_t idx, gen;
      uint16_t port, len;
      memcpy(&idx, p, 4);
      memcpy(&gen, p + 4, 4);
      memcpy(&port, p + 8, 2);
      memcpy(&len, p + 10, 2);
      const char *addr = (const char *)(p + 12);
      const uint8_t *payload = p + 58;
      p += 58 + len;
      if (idx >= eng->nslots) continue;
      responder_t *r = eng->slots[idx];
      if (r == NULL || r->gen != gen || r->on_miss == NULL) continue;
      napi_handle_scope scope;
      if (napi_open_handle_scope(env, &scope) != napi_ok) continue;
      napi_value cb, argv[3], undef, ret;
      void *bufdata;
      if (napi_get_reference_value(env, r->on_miss, &cb) == napi_ok && cb != NULL &&
          napi_create_buffer_copy(env, len, payload, &bufdata, &argv[0]) == napi_ok) {
        napi_create_string_latin1(env, addr, NAPI_AUTO_LENGTH, &argv[1]);
        napi_create_uint32(env, port, &argv[2]);
        napi_get_undefined(env, &undef);
        if (napi_call_function(env, undef, cb, 3, argv, &ret) == napi_pending_exception) {
          /* the JS wrapper catches and logs; an exception here is a bug in it: surface it */
          napi_value exc;
          napi_get_and_clear_last_exception(env, &exc);
          napi_fatal_exception(env, exc);
        }
      }
      napi_close_handle_scope(env, scope);
    }
  }
  free(m->data);
  free(m);
}

/* ---- lifecycle ---- */

static void stop_workers(engine_t *eng) {
  if (eng->stopfd >= 0) {
    uint64_t one = 1;
    ssize_t wr = write(eng->stopfd, &one, sizeof one);
    (void)wr;
  }
  for (int t = 0; t < eng->nthreads; t++) {
    worker_t *w = eng->w[t];
    if (!w) continue;
    if (w->started) pthread_join(w->thread, NULL);
    if (w->epfd >= 0) close(w->epfd);
    free(w);
    eng->w[t] = NULL;
  }
  if (eng->stopfd >= 0) close(eng->stopfd);
  eng->stopfd = -1;
}

static void free_responder(responder_t *r) {
  table_clear(r);
  free(r->buckets);
  for (int k = 0; k < r->nfds; k++) close(r->fds[k]);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* Closes everything; JS thread only. */
static void engine_shutdown(napi_env env, engine_t *eng) {
  if (eng->closed) return;
  eng->closed = 1;
  stop_workers(eng);
  for (uint32_t i = 0; i < eng->nslots; i++) {
    responder_t *r = eng->slots[i];
    if (!r) continue;
    if (r->on_miss && env) napi_delete_reference(env, r->on_miss);
    free_responder(r);
    eng->slots[i] = NULL;
  }
  if (eng->tsfn) napi_release_threadsafe_function(eng->tsfn, napi_tsfn_abort);
  eng->tsfn = NULL;
}

static void engine_cleanup_hook(void *arg) {
  engine_t *eng = arg;
  engine_shutdown(eng->env, eng);
}

static void engine_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  engine_t *eng = data;
  engine_shutdown(env, eng);
  napi_remove_env_cleanup_hook(env, engine_cleanup_hook, eng);
  pthread_rwlock_destroy(&eng->slots_lock);
  free(eng->slots);
  free(eng);
}

static napi_value throw_err(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static engine_t *get_engine(napi_env env, napi_value v) {
  engine_t *eng = NULL;
  if (napi_get_value_external(env, v, (void **)&eng) != napi_ok || eng == NULL) return NULL;
  return eng;
}

/* responderEngine(threads, rtPriority 0 = normal scheduling, 1..99 = SCHED_FIFO) -> external */
static napi_value engine_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int threads = 1, rtprio = 0;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &threads);
  if (argc >= 2) napi_get_value_int32(env, argv[1], &rtprio);
  if (threads < 1 || threads > R_MAX_THREADS) return throw_err(env, "ERR_INVALID_ARG_VALUE", "threads: 1..8");
  if (rtprio < 0 || rtprio > 99) return throw_err(env, "ERR_INVALID_ARG_VALUE", "realtimePriority: 0..99");
  engine_t *eng = calloc(1, sizeof *eng);
  eng->env = env;
  eng->nthreads = threads;
  eng->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&eng->slots_lock, &ra);
  pthread_rwlockattr_destroy(&ra);
  eng->next_gen = 1;
  napi_value name;
  napi_create_string_utf8(env, "cnm_osl.dnsResponder", NAPI_AUTO_LENGTH, &name);
  int ok = eng->stopfd >= 0 &&
           napi_create_threadsafe_function(env, NULL, NULL, name, R_MISS_QUEUE, 1, NULL, NULL, eng, call_js, &eng->tsfn) == napi_ok;
  if (ok) napi_unref_threadsafe_function(env, eng->tsfn); /* open sockets do not keep the process alive */
  int err = 0;
  const char *what = "dns responder engine";
  for (int t = 0; ok && t < threads; t++) {
    worker_t *w = calloc(1, sizeof *w);
    eng->w[t] = w;
    if (!w) {
      ok = 0;
      break;
    }
    w->eng = eng;
    w->id = t;
    w->rng = 0x12345u + (uint32_t)t * 7919u;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TOKEN};
    if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, eng->stopfd, &ev) < 0) {
      err = errno;
      ok = 0;
      break;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (rtprio > 0) {
      /* real-time worker: a query is answered as soon as it arrives, whatever else the CPUs run */
      struct sched_param sp = {.sched_priority = rtprio};
      pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
      pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
      pthread_attr_setschedparam(&attr, &sp);
    }
    int pe = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (pe != 0) {
      err = pe;
      what = rtprio > 0 ? "dns responder engine (SCHED_FIFO needs CAP_SYS_NICE)" : "dns responder engine";
      ok = 0;
      break;
    }
    w->started = 1;
  }
  if (!ok) {
    int e = err ? err : errno;
    engine_shutdown(env, eng);
    pthread_rwlock_destroy(&eng->slots_lock);
    free(eng);
    char msg[128];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
    return throw_err(env, e == EPERM ? "EPERM" : "EUNKNOWN", msg);
  }
  napi_add_env_cleanup_hook(env, engine_cleanup_hook, eng);
  napi_value ext;
  napi_create_external(env, eng, engine_finalize, NULL, &ext);
  return ext;
}

/* responderAttach(engine, fds[], family 4|6, ednsUdpSize, maxUdpReplyBytes, maxEntries, recvBufferBytes, onMiss)
   -> slot id. The descriptors belong to the responder from then on (closed by detach), also on failure. */
static napi_value responder_attach(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = argc >= 8 ? get_engine(env, argv[0]) : NULL;
  if (!eng || eng->closed) return throw_err(env, "ERR_INVALID_STATE", "responder engine closed");
  uint32_t nfds = 0;
  bool isarr = false;
  napi_is_array(env, argv[1], &isarr);
  if (!isarr) return throw_err(env, "ERR_INVALID_ARG_TYPE", "fds: array");
  napi_get_array_length(env, argv[1], &nfds);
  if (nfds < 1 || nfds > R_MAX_FDS) return throw_err(env, "ERR_INVALID_ARG_VALUE", "fds: 1..16 descriptors");
  int fds[R_MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    if (napi_get_value_int32(env, v, &fds[i]) != napi_ok || fds[i] < 0)
      return throw_err(env, "ERR_INVALID_ARG_TYPE", "fds: descriptor numbers");
  }
  int family, edns, maxudp, maxent, rcvbuf;
  napi_valuetype cbt;
  if (napi_get_value_int32(env, argv[2], &family) != napi_ok || napi_get_value_int32(env, argv[3], &edns) != napi_ok ||
      napi_get_value_int32(env, argv[4], &maxudp) != napi_ok || napi_get_value_int32(env, argv[5], &maxent) != napi_ok ||
      napi_get_value_int32(env, argv[6], &rcvbuf) != napi_ok || napi_typeof(env, argv[7], &cbt) != napi_ok ||
      cbt != napi_function)
    return throw_err(env, "ERR_INVALID_ARG_TYPE", "responderAttach(engine, fds, family, ednsUdpSize, maxUdpReplyBytes, maxEntries, recvBufferBytes, onMiss)");
  responder_t *r = calloc(1, sizeof *r);
  r->nfds = (int)nfds;
  memcpy(r->fds, fds, sizeof(int) * nfds);
  r->family = family == 6 ? AF_INET6 : AF_INET;
  {
    struct sockaddr_storage fs;
    socklen_t fl = sizeof fs;
    int st = 0;
    socklen_t stl = sizeof st;
    if (getsockname(fds[0], (struct sockaddr *)&fs, &fl) == 0) r->family = fs.ss_family;
    if (getsockopt(fds[0], SOL_SOCKET, SO_TYPE, &st, &stl) < 0 || st != SOCK_DGRAM || (r->family != AF_INET && r->family != AF_INET6)) {
      int e = errno;
      free(r);
      for (uint32_t i = 0; i < nfds; i++) close(fds[i]);
      return throw_err(env, e == EBADF ? "EBADF" : "EINVAL", "responderAttach: descriptors must be bound UDP sockets");
    }
  }
  r->edns_size = (uint16_t)edns;
  r->max_udp = (uint16_t)maxudp;
  r->max_entries = maxent < 0 ? 0 : (uint32_t)maxent;
  uint32_t nb = 64;
  while (nb < r->max_entries && nb < (1u << 20)) nb <<= 1;
  r->nbuckets = nb;
  r->buckets = calloc(nb, sizeof(entry_t *));
  pthread_mutex_init(&r->mu, NULL);
  napi_create_reference(env, argv[7], 1, &r->on_miss);
  for (uint32_t i = 0; i < nfds; i++) {
    if (rcvbuf > 0) setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  pthread_rwlock_wrlock(&eng->slots_lock);
  uint32_t idx = 0;
  while (idx < eng->nslots && eng->slots[idx] != NULL) idx++;
  if (idx == eng->nslots) {
    uint32_t n = eng->nslots ? eng->nslots * 2 : 16;
    responder_t **s = realloc(eng->slots, n * sizeof *s);
    if (s) {
      memset(s + eng->nslots, 0, (n - eng->nslots) * sizeof *s);
      eng->slots = s;
      eng->nslots = n;
    }
  }
  int err = idx < eng->nslots ? 0 : ENOMEM;
  if (err == 0) {
    r->index = idx;
    r->gen = eng->next_gen++ & 0xffffffffu;
    r->rng = 0x9e3779b9u ^ (idx * 2654435761u);
    for (uint32_t k = 0; k < nfds && err == 0; k++) {
      worker_t *w = eng->w[k % (uint32_t)eng->nthreads];
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)idx << 40) | ((uint64_t)r->gen << 8) | k};
      if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fds[k], &ev) < 0) {
        err = errno;
        for (uint32_t j = 0; j < k; j++) epoll_ctl(eng->w[j % (uint32_t)eng->nthreads]->epfd, EPOLL_CTL_DEL, fds[j], NULL);
      }
    }
    if (err == 0) eng->slots[idx] = r;
  }
  pthread_rwlock_unlock(&eng->slots_lock);
  if (err != 0) {
    napi_delete_reference(env, r->on_miss);
    free_responder(r);
    char msg[128];
    snprintf(msg, sizeof msg, "epoll_ctl(ADD): %s", strerror(err));
    return throw_err(env, err == EBADF ? "EBADF" : "EUNKNOWN", msg);
  }
  /* [id, port, family, address] of the first socket */
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  char addr[64] = "";
  int port = 0, fam = 4;
  if (getsockname(fds[0], (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      fam = 6;
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  napi_value out, v;
  napi_create_array_with_length(env, 4, &out);
  napi_create_uint32(env, idx, &v);
  napi_set_element(env, out, 0, v);
  napi_create_int32(env, port, &v);
  napi_set_element(env, out, 1, v);
  napi_create_int32(env, fam, &v);
  napi_set_element(env, out, 2, v);
  napi_create_string_latin1(env, addr, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, out, 3, v);
  return out;
}

static responder_t *get_responder(napi_env env, napi_value e, napi_value i, engine_t **out) {
  engine_t *eng = get_engine(env, e);
  uint32_t idx;
  if (!eng || eng->closed || napi_get_value_uint32(env, i, &idx) != napi_ok || idx >= eng->nslots) return NULL;
  *out = eng;
  return eng->slots[idx];
}

/* responderDetach(engine, id): stops serving and closes the responder's descriptors */
static napi_value responder_detach(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = NULL;
  responder_t *r = argc >= 2 ? get_responder(env, argv[0], argv[1], &eng) : NULL;
  if (!r) return NULL;
  pthread_rwlock_wrlock(&eng->slots_lock);
  for (int k = 0; k < r->nfds; k++) epoll_ctl(eng->w[k % eng->nthreads]->epfd, EPOLL_CTL_DEL, r->fds[k], NULL);
  eng->slots[r->index] = NULL;
  pthread_rwlock_unlock(&eng->slots_lock);
  napi_delete_reference(env, r->on_miss);
  free_responder(r);
  return NULL;
}

/* responderSet(engine, id, key Buffer (folded name wire + qtype), rcode, ancount, arcount, body Buffer,
   offsets Uint16Array|null) -> bool (false when the table is full) */
static napi_value responder_set(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = NULL;
  responder_t *r = argc >= 8 ? get_responder(env, argv[0], argv[1], &eng) : NULL;
  napi_value res;
  if (!r) {
    napi_get_boolean(env, false, &res);
    return res;
  }
  void *kd, *bd;
  size_t kl, bl;
  int rcode, an, arc;
  if (napi_get_buffer_info(env, argv[2], &kd, &kl) != napi_ok || kl < 3 || kl > R_KEY_MAX ||
      napi_get_value_int32(env, argv[3], &rcode) != napi_ok || napi_get_value_int32(env, argv[4], &an) != napi_ok ||
      napi_get_value_int32(env, argv[5], &arc) != napi_ok || napi_get_buffer_info(env, argv[6], &bd, &bl) != napi_ok ||
      an < 0 || an > 65535 || arc < 0 || arc > 65534 || bl > R_SLOT)
    return throw_err(env, "ERR_INVALID_ARG_TYPE", "responderSet(engine, id, key, rcode, ancount, arcount, body, offsets)");
  uint16_t *offs = NULL;
  napi_valuetype ot;
  napi_typeof(env, argv[7], &ot);
  if (ot != napi_null && ot != napi_undefined) {
    napi_typedarray_type tt;
    size_t tl;
    void *td;
    if (napi_get_typedarray_info(env, argv[7], &tt, &tl, &td, NULL, NULL) != napi_ok || tt != napi_uint16_array ||
        tl != (size_t)an + 1)
      return throw_err(env, "ERR_INVALID_ARG_TYPE", "offsets: Uint16Array of ancount + 1 record offsets");
    const uint16_t *src = td;
    for (size_t i = 0; i < tl; i++) {
      if (src[i] > bl || (i > 0 && src[i] < src[i - 1]))
        return throw_err(env, "ERR_INVALID_ARG_VALUE", "offsets: ascending, within body");
    }
    offs = malloc(tl * sizeof *offs);
    memcpy(offs, src, tl * sizeof *offs);
  }
  entry_t *e = calloc(1, sizeof *e);
  e->keylen = (uint16_t)kl;
  memcpy(e->key, kd, kl);
  e->hash = fnv(e->key, kl);
  e->rcode = (uint8_t)rcode;
  e->ancount = (uint16_t)an;
  e->arcount = (uint16_t)arc;
  e->bodylen = (uint32_t)bl;
  e->body = malloc(bl ? bl : 1);
  memcpy(e->body, bd, bl);
  e->offs = offs;
  e->rotate = offs != NULL;
  int stored = 1;
  pthread_mutex_lock(&r->mu);
  entry_t **link;
  entry_t *old = table_find(r, e->key, kl, e->hash, &link);
  if (old) {
    e->next = old->next;
    *link = e;
    free_entry(old);
  } else if (r->count < r->max_entries) {
    e->next = r->buckets[e->hash & (r->nbuckets - 1)];
    r->buckets[e->hash & (r->nbuckets - 1)] = e;
    r->count++;
  } else {
    stored = 0;
    r->st.rejected_entries++;
  }
  pthread_mutex_unlock(&r->mu);
  if (!stored) free_entry(e);
  napi_get_boolean(env, stored, &res);
  return res;
}

/* responderClear(engine, id) */
static napi_value responder_clear(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = NULL;
  responder_t *r = argc >= 2 ? get_responder(env, argv[0], argv[1], &eng) : NULL;
  if (!r) return NULL;
  pthread_mutex_lock(&r->mu);
  table_clear(r);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* responderSend(engine, id, data Buffer, address, port) -> bytes sent, or -errno. Sent from the JS thread on the
   responder's first socket (MSG_DONTWAIT). */
static napi_value responder_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = NULL;
  responder_t *r = argc >= 5 ? get_responder(env, argv[0], argv[1], &eng) : NULL;
  napi_value res;
  if (!r) {
    napi_create_int32(env, -EBADF, &res);
    return res;
  }
  void *d;
  size_t dl;
  char addr[64];
  size_t al;
  uint32_t port;
  if (napi_get_buffer_info(env, argv[2], &d, &dl) != napi_ok ||
      napi_get_value_string_latin1(env, argv[3], addr, sizeof addr, &al) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &port) != napi_ok || port > 65535)
    return throw_err(env, "ERR_INVALID_ARG_TYPE", "responderSend(engine, id, data, address, port)");
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (r->family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) {
      napi_create_int32(env, -EINVAL, &res);
      return res;
    }
    sl = sizeof *s4;
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) {
      napi_create_int32(env, -EINVAL, &res);
      return res;
    }
    sl = sizeof *s6;
  }
  ssize_t n;
  do n = sendto(r->fds[0], d, dl, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
  while (n < 0 && errno == EINTR);
  if (n < 0) __atomic_fetch_add(&r->st.send_errors, 1, __ATOMIC_RELAXED);
  napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &res);
  return res;
}

/* responderStats(engine, id) -> [received, answered, missed, dropped, sendErrors, entries, rejectedEntries] */
static napi_value responder_stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = NULL;
  responder_t *r = argc >= 2 ? get_responder(env, argv[0], argv[1], &eng) : NULL;
  if (!r) return NULL;
  pthread_mutex_lock(&r->mu);
  double v[7] = {(double)r->st.received, (double)r->st.answered, (double)r->st.missed, (double)r->st.dropped,
                 (double)__atomic_load_n(&r->st.send_errors, __ATOMIC_RELAXED), (double)r->count,
                 (double)r->st.rejected_entries};
  pthread_mutex_unlock(&r->mu);
  napi_value arr;
  napi_create_array_with_length(env, 7, &arr);
  for (uint32_t i = 0; i < 7; i++) {
    napi_value x;
    napi_create_double(env, v[i], &x);
    napi_set_element(env, arr, i, x);
  }
  return arr;
}

/* responderEngineClose(engine): joins the threads, closes every responder's descriptors */
static napi_value engine_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *eng = argc >= 1 ? get_engine(env, argv[0]) : NULL;
  if (eng) engine_shutdown(env, eng);
  return NULL;
}

void cnm_dns_responder_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"responderEngine", NULL, engine_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderEngineClose", NULL, engine_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderAttach", NULL, responder_attach, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderDetach", NULL, responder_detach, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderSet", NULL, responder_set, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderClear", NULL, responder_clear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderSend", NULL, responder_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"responderStats", NULL, responder_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
