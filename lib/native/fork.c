/*
 * fork.c: a real fork(2) for a warm Node process, and the few system calls
 * around it that Node does not offer (lib/warm-fork.ts is the typed face).
 *
 * Linux only. Call it from the main thread of a process started with the
 * flags in lib/warm-fork.ts (zygoteFlags); docs/warm-fork.md tells the hazards.
 *
 *   fork()              -> pid in the parent, 0 in the child; throws on failure
 *   exit(status)        -> _exit(status): no Node teardown, nothing flushed
 *   reap(pid = -1, endGroups) -> [{pid, code, signal}] for each child collected, WNOHANG
 *   setChildSubreaper() -> prctl(PR_SET_CHILD_SUBREAPER, 1)
 *   getrandom(n)        -> a Buffer of n bytes from the kernel
 *   getpid()            -> the real pid (process.pid is cached at start-up)
 *   whenIdle(callback)  -> calls back when the loop would end (for a forked child)
 *   idle()              -> true when nothing but whenIdle keeps the loop alive
 *   execProgram(fd, file, argv, env, failure) -> in a forked child: fd as stdin
 *                          and stdout, a session of its own, default signals, execvp;
 *                          never returns (when it fails: `failure`, _exit 127 or 126)
 *   leadGroup()         -> setpgid(0, 0): a process group of its own
 *   spawnProgram(fd, file, argv, env) -> the program's pid, started by
 *                          posix_spawnp as execProgram would start it, with no
 *                          copy of this process; 0 when it cannot be started
 *   peerState(fd)       -> what a recv peek sees of this connected socket's peer:
 *                          0 there, 1 closed its side with nothing unread, 2 reset
 *   sendNow(fd, buffer) -> send(MSG_DONTWAIT): the bytes a socket takes now (the log)
 *   peek(fd, size)      -> recv(MSG_PEEK): up to size bytes that wait, left unread; an
 *                          empty Buffer at end-of-file, null when none wait yet
 *   discard(fd, size)   -> recv: reads and drops exactly the first size bytes (a PROXY header)
 *   whenReadable(fd, atLeast, callback) -> an id; calls back once, callback(ended), when
 *                          fd has atLeast bytes or an end to read, without reading them
 *                          (a uv_poll on a dup of fd, with SO_RCVLOWAT set until then)
 *   unwatch(id)         -> stops a whenReadable that has not called back
 *   acceptPending(fd)   -> accept4 until the listening fd's backlog is empty: the new
 *                          descriptors (non-blocking), for a drain to serve before it closes
 *   refuseNew(fd)       -> on a TCP listener about to close: a socket filter that drops
 *                          every new SYN, so that no connection joins its backlog any more
 *   nodeVersion         -> the Node version this was compiled against
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <node_version.h> /* first: it sets the NAPI_VERSION node_api.h builds for */
#include <node_api.h>
#include <uv.h>

#include "park.h"

/* Throws a JS Error for an errno value: code "EAGAIN", message "fork: Resource temporarily unavailable". */
static napi_value throw_errno(napi_env env, const char *call, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", call, strerror(err));
  napi_throw_error(env, uv_err_name(-err), message);
  return NULL;
}

/* The whole of a small /proc file, NUL-terminated; NULL on failure (errno set). */
static char *read_all(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t size = 0, cap = 0;
  char *buf = NULL;
  for (;;) {
    if (cap - size < 4096) {
      char *bigger = realloc(buf, cap = cap ? cap * 2 : 65536);
      if (bigger == NULL) break;
      buf = bigger;
    }
    ssize_t n = read(fd, buf + size, cap - size - 1);
    if (n > 0) size += (size_t)n;
    else if (n == 0) {
      buf[size] = '\0';
      close(fd);
      return buf;
    } else if (errno != EINTR) break;
  }
  int err = errno; /* realloc sets ENOMEM */
  free(buf);
  close(fd);
  errno = err;
  return NULL;
}

/*
 * V8 maps its heap MADV_DONTFORK (so that fork+exec need not copy it): a
 * forked child would have no JS heap and crash at once. Undo that for every
 * private anonymous mapping. About 0.2 ms; failures are ignored, since a
 * mapping may go between reading the list and the madvise.
 */
static int mark_dofork(void) {
  char *maps = read_all("/proc/self/maps");
  if (maps == NULL) return errno;
  for (char *line = maps; *line != '\0';) {
    char *end = strchr(line, '\n');
    if (end != NULL) *end = '\0';
    unsigned long start, stop, inode;
    char perms[5];
    int pathAt = 0;
    /* "start-end perms offset dev inode [path]" */
    if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &start, &stop, perms, &inode, &pathAt) >= 4 &&
        perms[3] == 'p' && inode == 0 &&
        (line[pathAt] == '\0' || strncmp(line + pathAt, "[anon", 5) == 0 ||
         strcmp(line + pathAt, "[heap]") == 0 || strcmp(line + pathAt, "[stack]") == 0))
      madvise((void *)start, stop - start, MADV_DOFORK);
    if (end == NULL) break;
    line = end + 1;
  }
  free(maps);
  return 0;
}

static napi_value js_fork(napi_env env, napi_callback_info info) {
  (void)info;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_errno(env, "fork", EINVAL);
  int err = park_workers();
  if (err != 0) return throw_errno(env, "fork: parking V8's worker threads", err);
  err = mark_dofork();
  if (err != 0) {
    unpark_workers();
    return throw_errno(env, "fork: reading /proc/self/maps", err);
  }
  pid_t pid = fork();
  if (pid == 0) {
    forget_workers();
    /* The child shares the parent's epoll instance until this makes its own. */
    err = uv_loop_fork(loop);
    if (err != 0) {
      /* Throwing here would let the child carry on as if it were the parent. */
      fprintf(stderr, "forkserver: uv_loop_fork in a forked child: %s\n", uv_strerror(err));
      _exit(70);
    }
  } else {
    err = errno;
    unpark_workers();
    if (pid < 0) return throw_errno(env, "fork", err);
  }
  napi_value result;
  napi_create_int32(env, pid, &result);
  return result;
}

/* The first argument as an int32, or `fallback` when it is missing or undefined. */
static int int_arg(napi_env env, napi_callback_info info, int fallback) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type = napi_undefined;
  int32_t value = fallback;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 &&
      napi_typeof(env, argv[0], &type) == napi_ok && type == napi_number)
    napi_get_value_int32(env, argv[0], &value);
  return value;
}

static napi_value js_exit(napi_env env, napi_callback_info info) {
  _exit(int_arg(env, info, 0) & 0xff);
}

static void set_int_or_null(napi_env env, napi_value obj, const char *name, int has, int value) {
  napi_value v;
  if (has) napi_create_int32(env, value, &v);
  else napi_get_null(env, &v);
  napi_set_named_property(env, obj, name, v);
}

/* The second argument as a boolean; false when it is missing. */
static int bool_arg2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool value = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 2) napi_get_value_bool(env, argv[1], &value);
  return value;
}

/*
 * Collects exited children without blocking. The signal is a number (JS maps
 * it to a name). With pid -1 this also takes children Node's child_process
 * started, whose 'exit' would then never come: pass a pid in such a process.
 *
 * With endGroups, each child's process group is sent SIGKILL just before the
 * child is collected: whatever it left behind (a program's background job)
 * ends with it. waitid(WNOWAIT) finds the child while it is still a zombie:
 * until it is collected its pid is taken, so no other process can lead a
 * group of that id, and -pid can only be its own group. (After the waitpid
 * the id may be reused as soon as the group is empty.)
 */
static napi_value js_reap(napi_env env, napi_callback_info info) {
  int which = int_arg(env, info, -1);
  int end_groups = bool_arg2(env, info);
  napi_value list;
  napi_create_array(env, &list);
  uint32_t count = 0;
  for (;;) {
    pid_t target = which;
    if (end_groups) {
      siginfo_t exited;
      memset(&exited, 0, sizeof exited);
      int r = waitid(which > 0 ? P_PID : P_ALL, which > 0 ? (id_t)which : 0, &exited, WEXITED | WNOHANG | WNOWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != ECHILD) return throw_errno(env, "waitid", errno);
      if (r < 0 || exited.si_pid == 0) break;
      target = exited.si_pid;
      kill(-target, SIGKILL); /* ESRCH: it led no group, or the group is empty */
    }
    int status;
    pid_t pid = waitpid(target, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0 && errno != ECHILD) return throw_errno(env, "waitpid", errno);
    if (pid <= 0) break;
    napi_value entry;
    napi_create_object(env, &entry);
    set_int_or_null(env, entry, "pid", 1, pid);
    set_int_or_null(env, entry, "code", WIFEXITED(status), WEXITSTATUS(status));
    set_int_or_null(env, entry, "signal", WIFSIGNALED(status), WTERMSIG(status));
    napi_set_element(env, list, count++, entry);
    if (which > 0) break;
  }
  return list;
}

static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return NULL;
}

static napi_value js_getrandom(napi_env env, napi_callback_info info) {
  int size = int_arg(env, info, 32);
  if (size < 0 || size > 65536) return throw_errno(env, "getrandom", EINVAL);
  void *data;
  napi_value buffer;
  if (napi_create_buffer(env, (size_t)size, &data, &buffer) != napi_ok) return NULL;
  for (ssize_t done = 0; done < size;) {
    ssize_t n = getrandom((char *)data + done, (size_t)(size - done), 0);
    if (n < 0 && errno != EINTR) return throw_errno(env, "getrandom", errno);
    if (n > 0) done += n;
  }
  return buffer;
}

static napi_value js_getpid(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, getpid(), &result);
  return result;
}

/*
 * A forked child must never let its loop run dry: when uv_run returns, Node
 * waits for the platform's worker tasks to drain (DrainTasks), and the tasks
 * parked at the fork never finish down here. So a forked child keeps a ref'd
 * prepare handle, and just before each poll asks libuv whether anything else
 * keeps the loop alive; when nothing does, JS is called back to end the child
 * with _exit, where Node would have begun its own end.
 */
static uv_prepare_t keeper;
static napi_env keeper_env;
static napi_ref keeper_callback;
static napi_async_context keeper_context;

/* Is the loop alive by the keeper alone? */
static int loop_idle(void) {
  uv_unref((uv_handle_t *)&keeper);
  int alive = uv_loop_alive(keeper.loop);
  uv_ref((uv_handle_t *)&keeper);
  return !alive;
}

static void on_prepare(uv_prepare_t *handle) {
  (void)handle;
  if (!loop_idle()) return;
  napi_handle_scope scope;
  napi_value callback, global, ignored;
  napi_open_handle_scope(keeper_env, &scope);
  napi_get_reference_value(keeper_env, keeper_callback, &callback);
  napi_get_global(keeper_env, &global);
  if (napi_make_callback(keeper_env, keeper_context, global, callback, 0, NULL, &ignored) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(keeper_env, &err);
    napi_fatal_exception(keeper_env, err); /* as an uncaught exception */
  }
  napi_close_handle_scope(keeper_env, scope);
}

static napi_value js_when_idle(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return throw_errno(env, "whenIdle", EINVAL);
  if (keeper_env != NULL) return throw_errno(env, "whenIdle: called twice", EBUSY);
  napi_get_uv_event_loop(env, &loop);
  napi_create_reference(env, argv[0], 1, &keeper_callback);
  napi_create_string_utf8(env, "forkserver:when-idle", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &keeper_context);
  keeper_env = env;
  uv_prepare_init(loop, &keeper);
  uv_prepare_start(&keeper, on_prepare);
  return NULL;
}

static napi_value js_idle(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, keeper_env != NULL && loop_idle(), &result);
  return result;
}

/* A JS string as a malloc'd C string; NULL when it is not a string or holds a NUL. */
static char *c_string(napi_env env, napi_value value) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *s = malloc(length + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, value, s, length + 1, &length);
  if (strlen(s) == length) return s;
  free(s); /* a NUL inside: execvp would cut it short */
  return NULL;
}

/* Frees a list from c_strings(), and what it points to. */
static void free_strings(char **list) {
  for (char **item = list; item != NULL && *item != NULL; item++) free(*item);
  free(list);
}

/* A JS array of strings as a NULL-terminated char *[]; NULL when any is not a string. */
static char **c_strings(napi_env env, napi_value array) {
  uint32_t count;
  if (napi_get_array_length(env, array, &count) != napi_ok) return NULL;
  char **list = calloc(count + 1, sizeof *list);
  for (uint32_t i = 0; list != NULL && i < count; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    if ((list[i] = c_string(env, item)) == NULL) {
      free_strings(list);
      return NULL;
    }
  }
  return list;
}

/* Node ignores SIGPIPE and blocks some signals; a program starts with the defaults. */
static void default_signals(void) {
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Every descriptor but 0, 1 and 2 (the IPC channel, the zygote's own, the socket's first copy). */
static void close_others(void) {
  if (close_range(3, ~0U, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) close((int)fd);
}

/*
 * In a forked child, becomes the program, as tcpserver's child does: never
 * returns. When execvp fails, the warning line lib/exec.ts formatted in the
 * server's log format (text or JSON), filled in with the pid, how and why, and
 * the shell's status: 127 for no such program, 126 for the rest.
 */
static napi_value js_exec_program(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  int32_t fd = -1;
  char *file = NULL, **argv = NULL, **envp = NULL, *failure = NULL;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) == napi_ok && argc == 5 &&
      napi_get_value_int32(env, args[0], &fd) == napi_ok) {
    file = c_string(env, args[1]);
    argv = c_strings(env, args[2]);
    envp = c_strings(env, args[3]);
    failure = c_string(env, args[4]); /* the log line, in the server's format, built by lib/exec.ts */
  }
  int err = EINVAL;
  if (fd >= 0 && file != NULL && argv != NULL && envp != NULL) {
    int flags = fcntl(fd, F_GETFL);
    /* Node made the socket non-blocking; a program reads its stdin blocking (as libuv's spawn leaves it). */
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0) err = errno;
    else {
      fcntl(2, F_SETFD, 0); /* stderr stays the program's: Node may have marked it close-on-exec */
      setsid(); /* the program and all it starts are one group, killed as one */
      default_signals();
      close_others();
      environ = envp;
      execvp(file, argv);
      err = errno;
    }
  }
  dprintf(2, failure != NULL ? failure : "warning: pid %1$d: exec: %2$s (%3$s)\n", (int)getpid(),
          err == ENOENT ? "not found" : err == EACCES ? "not executable" : "cannot start", strerror(err));
  _exit(err == ENOENT ? 127 : 126);
}

/*
 * The program as a child of this process, set up as execProgram sets it up,
 * but with posix_spawnp: glibc starts it with clone(CLONE_VM | CLONE_VFORK),
 * which shares this process's memory until the exec instead of copying its
 * page tables, so the cost does not grow with the zygote's size. Returns the
 * pid, or 0 when the program could not be started (glibc reports a failed
 * exec): the caller then forks a child that fails the same exec and says why,
 * in the server's log format, with status 127 or 126.
 */
static napi_value js_spawn_program(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4], result;
  int32_t fd = -1;
  char *file = NULL, **argv = NULL, **envp = NULL;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) == napi_ok && argc == 4 &&
      napi_get_value_int32(env, args[0], &fd) == napi_ok) {
    file = c_string(env, args[1]);
    argv = c_strings(env, args[2]);
    envp = c_strings(env, args[3]);
  }
  pid_t pid = 0;
  int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  /* O_NONBLOCK belongs to the socket, not to this copy of it: the program reads it blocking. */
  if (file != NULL && argv != NULL && envp != NULL && flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fd, 0);
    posix_spawn_file_actions_adddup2(&actions, fd, 1);
    /* dup2 of stderr onto itself clears its close-on-exec flag: stderr stays the program's. */
    if (fcntl(2, F_GETFD) >= 0) posix_spawn_file_actions_adddup2(&actions, 2, 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_init(&attr);
    /* A session of its own, every signal at its default and none blocked: as execProgram. */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    if (posix_spawnp(&pid, file, &actions, &attr, argv, envp) != 0) pid = 0;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  /* This process lives on (execProgram's child never comes back): its copies go. */
  free(file);
  free_strings(argv);
  free_strings(envp);
  napi_create_int32(env, pid, &result);
  return result;
}

/* setpgid(0, 0), in a forked child: a process group of its own, as a spawned child has, for what it starts. */
static napi_value js_lead_group(napi_env env, napi_callback_info info) {
  (void)info;
  if (setpgid(0, 0) < 0) return throw_errno(env, "setpgid", errno);
  return NULL;
}

/*
 * send(fd, buffer, MSG_DONTWAIT): as much of the buffer as a socket takes
 * now, without waiting and without touching the descriptor's flags, which the
 * processes that share it keep (the log, when stderr is a socket: lib/log-writer.ts).
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
 * The PROXY protocol header (lib/proxy-read.ts). The process that accepts
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
 * first (lib/listen.ts takeBacklog). Node offers no accept() of its own.
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

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback fn; } functions[] = {
    {"fork", js_fork}, {"exit", js_exit}, {"reap", js_reap},
    {"setChildSubreaper", js_set_child_subreaper}, {"getrandom", js_getrandom}, {"getpid", js_getpid},
    {"whenIdle", js_when_idle}, {"idle", js_idle}, {"execProgram", js_exec_program}, {"leadGroup", js_lead_group},
    {"spawnProgram", js_spawn_program}, {"sendNow", js_send_now}, {"peerState", js_peer_state},
    {"peek", js_peek}, {"discard", js_discard}, {"whenReadable", js_when_readable}, {"unwatch", js_unwatch},
    {"acceptPending", js_accept_pending}, {"refuseNew", js_refuse_new},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  napi_value version;
  napi_create_string_utf8(env, "v" NODE_VERSION_STRING, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "nodeVersion", version);
  return exports;
}
