/*
 * socket.c: what Node's sockets cannot do: look at a socket without reading
 * it, write without waiting, and empty or close a listener's backlog.
 *
 *   sendNow(fd, buffer) -> send(MSG_DONTWAIT): the bytes a socket takes now
 *                          (the log, when stderr is a socket: the parent and each prefork worker)
 *   peerState(fd)       -> what a recv peek sees of this connected socket's peer:
 *                          0 there, 1 closed its side with nothing unread, 2 reset
 *                          (the parent, of the connections it holds queued)
 *   peek(fd, size)      -> recv(MSG_PEEK): up to size bytes that wait, left unread; an
 *                          empty Buffer at end-of-file, null when none wait yet
 *   discard(fd, size)   -> recv: reads and drops exactly the first size bytes (a PROXY header)
 *   whenReadable(fd, atLeast, callback) -> an id; calls back once, callback(ended), when
 *                          fd has atLeast bytes or an end to read, without reading them
 *                          (a uv_poll on a dup of fd, with SO_RCVLOWAT set until then)
 *   unwatch(id)         -> stops a whenReadable that has not called back
 *                          (these four: --proxy-protocol, in the process that accepts:
 *                          the parent, or a prefork worker)
 *   acceptPending(fd)   -> accept4 until the listening fd's backlog is empty: the new
 *                          descriptors (non-blocking), for a drain to serve before it closes
 *                          (the parent, and a prefork worker, as each stops accepting)
 *   refuseNew(fd)       -> on a TCP listener about to close: a socket filter that drops
 *                          every new SYN, so that no connection joins its backlog any more
 *                          (the parent, at a drain, on its listener and the workers')
 *   pair()              -> [zygote's end, spare's end]: a socketpair(SOCK_SEQPACKET) that
 *                          carries one connection to one spare (the zygote, --spares)
 *   sendFd(fd, conn, buffer) -> one message on a pair: the buffer and a copy of conn
 *   recvFd(fd)          -> blocks for that message: { fd, data }, or null once the other
 *                          end is closed (a spare forked by the zygote, waiting for its socket)
 */
#include "native.h"

#include <fcntl.h>
#include <stdlib.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * send(fd, buffer, MSG_DONTWAIT): as much of the buffer as a socket takes
 * now, without waiting and without touching the descriptor's flags, which the
 * processes that share it keep (the log, when stderr is a socket: lib/log/log-writer.ts).
 * The bytes sent; throws EAGAIN when there is no room.
 */
static napi_value js_send_now(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd = -1;
  void *data = NULL;
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok)
    return throw_errno(env, "sendNow", EINVAL);
  ssize_t n;
  do n = send(fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "send", errno);
  napi_create_int64(env, (int64_t)n, &result);
  return result;
}

/*
 * Has the peer of a queued connection left? The parent holds such a socket
 * paused and must not read it: its bytes belong to the child. A peek reads
 * nothing: 0 bytes is end-of-file (the peer closed its side and nothing is
 * unread), an error such as ECONNRESET says it reset, EAGAIN or bytes waiting
 * that it is still there. One system call per socket, however many sockets
 * the host has: /proc/net/tcp, the fallback, lists them all.
 * Returns 0 (there), 1 (closed, nothing unread) or 2 (reset, or any error).
 */
static napi_value js_peer_state(napi_env env, napi_callback_info info) {
  int fd = int_arg(env, info, -1);
  char byte;
  ssize_t n;
  do n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  int state = n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? 0 : n == 0 ? 1 : 2;
  napi_value result;
  napi_create_int32(env, state, &result);
  return result;
}

/*
 * The PROXY protocol header (lib/proxy/proxy-read.ts). The process that accepts
 * reads the header, and only the header: the bytes after it belong to the
 * service, or to an --exec program that reads the descriptor itself. Node
 * cannot read a set number of bytes (a read takes whatever waits), so the
 * header is found with a peek, which leaves everything in the kernel, and
 * then exactly its length is read and dropped.
 */
#define RECV_MAX 65536
#define BAD_ARGUMENTS (-2)

/* recv(fd, buffer, size) with `flags`, never waiting: the bytes, or -1 with errno; BAD_ARGUMENTS once it has thrown. */
static ssize_t recv_now(napi_env env, napi_callback_info info, const char *call, int flags, char *buffer) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, size = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &size) != napi_ok ||
      size <= 0 || size > RECV_MAX) {
    throw_errno(env, call, EINVAL);
    return BAD_ARGUMENTS;
  }
  ssize_t n;
  do n = recv(fd, buffer, (size_t)size, flags | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n;
}

static napi_value js_peek(napi_env env, napi_callback_info info) {
  char buffer[RECV_MAX];
  napi_value result;
  ssize_t n = recv_now(env, info, "peek", MSG_PEEK, buffer);
  if (n == BAD_ARGUMENTS) return NULL;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    napi_get_null(env, &result);
    return result;
  }
  if (n < 0) return throw_errno(env, "recv", errno);
  napi_create_buffer_copy(env, (size_t)n, buffer, NULL, &result);
  return result;
}

/* MSG_WAITALL is not needed: the bytes were seen by a peek, so they are there. */
static napi_value js_discard(napi_env env, napi_callback_info info) {
  char buffer[RECV_MAX];
  napi_value result;
  ssize_t n = recv_now(env, info, "discard", 0, buffer);
  if (n == BAD_ARGUMENTS) return NULL;
  if (n < 0) return throw_errno(env, "recv", errno);
  napi_create_int32(env, (int32_t)n, &result);
  return result;
}

/*
 * Waiting for a header's bytes without reading them. Node's socket would read
 * whatever comes, so a uv_poll watches a dup of the descriptor instead (libuv
 * keeps one watcher per descriptor number; the dup is a number of its own for
 * the same socket). It fires once, then stops, and the dup is closed.
 * Polling is level-triggered: while part of a header waits unread, the socket
 * is always readable. SO_RCVLOWAT says how many bytes make it readable, so a
 * watch for the rest wakes when more has come (or the peer has closed), not at
 * once; it is put back to 1, the default, before the socket goes on.
 */
typedef struct watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int fd; /* the dup */
  int32_t id;
  struct watch *next;
} watch_t;

static watch_t *watches;
static int32_t last_watch_id;

static void set_low_water(int fd, int bytes) {
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes);
}

static void watch_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  close(w->fd);
  free(w);
}

/* Takes w off the list and stops its poll; the dup closes with the handle. Its callback is the caller's to let go of. */
static void watch_stop(watch_t *w) {
  for (watch_t **p = &watches; *p != NULL; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      break;
    }
  uv_poll_stop(&w->poll);
  set_low_water(w->fd, 1);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_release(napi_env env, napi_ref callback, napi_async_context context) {
  napi_delete_reference(env, callback);
  napi_async_destroy(env, context);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  watch_t *w = handle->data;
  napi_env env = w->env;
  napi_ref ref = w->callback;
  napi_async_context context = w->context;
  watch_stop(w); /* first: the callback may close the socket, or watch it again */
  napi_handle_scope scope;
  napi_value callback, global, ended, ignored;
  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, ref, &callback);
  napi_get_global(env, &global);
  /* An error (a reset) counts as an end: the peek that follows says which. */
  napi_get_boolean(env, status < 0 || (events & UV_DISCONNECT) != 0, &ended);
  if (napi_make_callback(env, context, global, callback, 1, &ended, &ignored) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* as an uncaught exception */
  }
  napi_close_handle_scope(env, scope);
  watch_release(env, ref, context);
}

static napi_value js_when_readable(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, result;
  int32_t fd = -1, at_least = 1;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &at_least) != napi_ok ||
      at_least < 1 || napi_typeof(env, argv[2], &type) != napi_ok || type != napi_function)
    return throw_errno(env, "whenReadable", EINVAL);
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return throw_errno(env, "dup", errno);
  watch_t *w = calloc(1, sizeof *w);
  if (w == NULL) {
    close(copy);
    return throw_errno(env, "whenReadable", ENOMEM);
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int err = uv_poll_init(loop, &w->poll, copy);
  if (err != 0) {
    close(copy);
    free(w);
    return throw_errno(env, "uv_poll_init", -err);
  }
  w->poll.data = w;
  w->env = env;
  w->fd = copy;
  w->id = ++last_watch_id;
  napi_create_reference(env, argv[2], 1, &w->callback);
  napi_create_string_utf8(env, "forkserver:when-readable", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->context);
  w->next = watches;
  watches = w;
  set_low_water(copy, at_least);
  err = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  if (err != 0) {
    watch_release(env, w->callback, w->context);
    watch_stop(w);
    return throw_errno(env, "uv_poll_start", -err);
  }
  napi_create_int32(env, w->id, &result);
  return result;
}

static napi_value js_unwatch(napi_env env, napi_callback_info info) {
  int32_t id = int_arg(env, info, -1);
  for (watch_t *w = watches; w != NULL; w = w->next)
    if (w->id == id) {
      watch_release(env, w->callback, w->context);
      watch_stop(w);
      break;
    }
  return NULL;
}

/*
 * Closing a listening socket resets every connection still in its backlog:
 * clients whose handshake the kernel completed, and which a balancer counts
 * as connected, so it will not retry them elsewhere. A drain takes them
 * first (lib/net/listen.ts takeBacklog). Node offers no accept() of its own.
 * At most 4096 a call; ECONNABORTED (one reset while it waited) is skipped.
 */
static napi_value js_accept_pending(napi_env env, napi_callback_info info) {
  int fd = int_arg(env, info, -1);
  napi_value result;
  napi_create_array(env, &result);
  uint32_t taken = 0;
  for (int tries = 0; tries < 4096; tries++) {
    int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn < 0 && (errno == EINTR || errno == ECONNABORTED)) continue;
    if (conn < 0) break; /* EAGAIN: nothing more waits (or the fd is no listener) */
    napi_value value;
    napi_create_int32(env, conn, &value);
    napi_set_element(env, result, taken++, value);
  }
  return result;
}

/*
 * What acceptPending() leaves behind: a connection whose handshake completes
 * between its last accept4 and the close, which the close resets (the longer
 * the process is kept off the CPU just then, the likelier). A filter on the
 * listening socket that drops every SYN (SYN without ACK) stops new ones from
 * joining the backlog first, in every process that holds the socket, while
 * handshakes under way complete. A dropped SYN is sent again a second later,
 * and is refused then (the listener is gone), as a balancer retries elsewhere.
 * Only a listener that closes for good may get it: the sockets it accepts
 * from then on inherit the filter (harmless: they never see a bare SYN).
 * The filter sees the TCP header first: byte 13 holds the flags.
 */
static napi_value js_refuse_new(napi_env env, napi_callback_info info) {
  int fd = int_arg(env, info, -1);
  int domain = 0;
  socklen_t size = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0) return throw_errno(env, "refuseNew", errno);
  if (domain != AF_INET && domain != AF_INET6) return NULL; /* a Unix-domain listener: no SYNs */
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),           /* the TCP flags */
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),        /* SYN and ACK */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),  /* SYN alone? */
    BPF_STMT(BPF_RET | BPF_K, 0),                     /* drop it */
    BPF_STMT(BPF_RET | BPF_K, 0xffffffff),            /* keep the rest, whole */
  };
  struct sock_fprog program = { .len = sizeof code / sizeof code[0], .filter = code };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) return throw_errno(env, "refuseNew", errno);
  return NULL;
}

/*
 * A spare forked by the zygote waits for its connection on a pair of its own
 * (lib/zygote/zygote.ts). SEQPACKET keeps a message whole: the connection's
 * descriptor (SCM_RIGHTS) and its details (JSON) arrive together, or not at all.
 * Both ends close on exec: a program started by the zygote inherits neither.
 */
static napi_value js_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return throw_errno(env, "socketpair", errno);
  napi_value result, value;
  napi_create_array_with_length(env, 2, &result);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &value);
    napi_set_element(env, result, i, value);
  }
  return result;
}

static napi_value js_send_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1, conn = -1;
  void *data = NULL;
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &conn) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok)
    return throw_errno(env, "sendFd", EINVAL);
  union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int))]; } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = { .iov_base = data, .iov_len = length };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &conn, sizeof(int));
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  return NULL;
}

/* Blocks: a spare has nothing else to do. The descriptor arrives close-on-exec (--exec dups it to 0 and 1). */
static napi_value js_recv_fd(napi_env env, napi_callback_info info) {
  int fd = int_arg(env, info, -1);
  char data[65536];
  union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int))]; } control;
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "recvmsg", errno);
  napi_value result = NULL, value;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  if (n == 0 || cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
    napi_get_null(env, &result); /* the other end is closed: no connection will come */
    return result;
  }
  int conn;
  memcpy(&conn, CMSG_DATA(cmsg), sizeof conn);
  napi_create_object(env, &result);
  napi_create_int32(env, conn, &value);
  napi_set_named_property(env, result, "fd", value);
  void *copy = NULL;
  napi_create_buffer_copy(env, (size_t)n, data, &copy, &value);
  napi_set_named_property(env, result, "data", value);
  return result;
}

void register_socket(napi_env env, napi_value exports) {
  static const native_function functions[] = {
    {"sendNow", js_send_now}, {"peerState", js_peer_state},
    {"peek", js_peek}, {"discard", js_discard}, {"whenReadable", js_when_readable}, {"unwatch", js_unwatch},
    {"acceptPending", js_accept_pending}, {"refuseNew", js_refuse_new},
    {"pair", js_pair}, {"sendFd", js_send_fd}, {"recvFd", js_recv_fd},
  };
  export_functions(env, exports, functions, sizeof functions / sizeof functions[0]);
}
