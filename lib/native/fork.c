/*
 * fork.c: a real fork(2) for a warm Node process, and the few system calls
 * around it that Node does not offer (lib/zygote/warm-fork.ts is the typed face).
 *
 * Linux only. Call it from the main thread of a process started with the
 * flags in lib/zygote/warm-fork.ts (zygoteFlags); docs/warm-fork.md tells the hazards.
 *
 *   fork()              -> pid in the parent, 0 in the child; throws on failure
 *                          (the zygote, and its self-test at start)
 *   exit(status)        -> _exit(status): no Node teardown, nothing flushed (a forked child)
 *   reap(pid = -1, endGroups) -> [{pid, code, signal}] for each child collected, WNOHANG
 *                          (the zygote its children; the parent, under --start zygote,
 *                          what it adopts)
 *   exited()            -> the pid of a child that has exited, left uncollected; 0 for none
 *                          (the zygote, to choose how to reap it)
 *   setChildSubreaper() -> prctl(PR_SET_CHILD_SUBREAPER, 1) (the zygote, and the parent
 *                          under --start zygote)
 *   fillRandom(view)    -> fills a typed array with bytes from the kernel, in place (a forked
 *                          child: its Math.random state and Node's caches of random bytes)
 *   getpid()            -> the real pid (process.pid is cached at start-up; a forked child)
 *   whenIdle(callback)  -> calls back when the loop would end (for a forked child)
 *   idle()              -> true when nothing but whenIdle keeps the loop alive
 *   leadGroup()         -> setpgid(0, 0): a process group of its own (a forked child)
 *   onParentDeath(parent, callback)
 *                       -> calls back whenever this process's parent dies (a forked child)
 *   shrink()            -> gives unused heap memory back to the kernel (a zygote, once)
 *   holdStops(hold)     -> blocks (or unblocks) SIGTERM, SIGINT and SIGHUP in this thread
 *                          (the zygote, around the fork of a spare)
 *   defaultStops()      -> those three back to their default action, then unblocked
 *                          (a spare, before it waits: one sent meanwhile ends it then)
 *
 * With FORKSERVER_FORK_TIMES set (make bench's cost table), the parent writes
 * one line per fork() on stderr: `fork-time park=NS maps=NS fork=NS unpark=NS`.
 */
#include "native.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "park.h"

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

/* Set from FORKSERVER_FORK_TIMES when the addon loads. */
static int trace_times = 0;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* t: before parking, before the MADV_DOFORK walk, before fork(2), after it, after unparking. */
static void trace_fork(const long long t[5]) {
  char line[128];
  int n = snprintf(line, sizeof line, "fork-time park=%lld maps=%lld fork=%lld unpark=%lld\n",
                   t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]);
  if (n > 0 && write(2, line, (size_t)n) < 0) return; /* a trace: nothing to do if it is lost */
}

static napi_value js_fork(napi_env env, napi_callback_info info) {
  (void)info;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_errno(env, "fork", EINVAL);
  long long t[5] = {now_ns(), 0, 0, 0, 0};
  int err = park_workers();
  if (err != 0) return throw_errno(env, "fork: parking V8's worker threads", err);
  t[1] = now_ns();
  err = mark_dofork();
  if (err != 0) {
    unpark_workers();
    return throw_errno(env, "fork: reading /proc/self/maps", err);
  }
  t[2] = now_ns();
  pid_t pid = fork();
  int fork_err = errno;
  t[3] = now_ns();
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
    unpark_workers();
    if (pid < 0) return throw_errno(env, "fork", fork_err);
    t[4] = now_ns();
    if (trace_times) trace_fork(t);
  }
  napi_value result;
  napi_create_int32(env, pid, &result);
  return result;
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

/*
 * waitid(WNOWAIT): the pid of an exited child, still a zombie, so that the
 * caller can choose how to reap it (reap(pid, endGroups)); 0 when none has
 * exited. Only where nothing else waits for children: it finds Node's
 * child_process children too.
 */
static napi_value js_exited(napi_env env, napi_callback_info info) {
  (void)info;
  siginfo_t exited;
  memset(&exited, 0, sizeof exited);
  int r;
  do r = waitid(P_ALL, 0, &exited, WEXITED | WNOHANG | WNOWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != ECHILD) return throw_errno(env, "waitid", errno);
  napi_value result;
  napi_create_int32(env, r < 0 ? 0 : exited.si_pid, &result);
  return result;
}

static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return NULL;
}

/* Fills `buf` from getrandom(2); 0, or an errno value. */
static int fill_random(char *buf, size_t size) {
  for (size_t done = 0; done < size;) {
    ssize_t n = getrandom(buf + done, size - done, 0);
    if (n < 0 && errno != EINTR) return errno;
    if (n > 0) done += (size_t)n;
  }
  return 0;
}

/* Bytes per element of each napi_typedarray_type, in the enum's order (int8 ... biguint64). */
static const size_t element_size[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};

static napi_value js_fill_random(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_typedarray = false;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_is_typedarray(env, argv[0], &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      (size_t)type >= sizeof element_size / sizeof element_size[0])
    return throw_errno(env, "fillRandom: not a typed array", EINVAL);
  int err = fill_random(data, length * element_size[type]);
  if (err != 0) return throw_errno(env, "getrandom", err);
  return NULL;
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

/* setpgid(0, 0), in a forked child: a process group of its own, as a spawned child has, for what it starts. */
static napi_value js_lead_group(napi_env env, napi_callback_info info) {
  (void)info;
  if (setpgid(0, 0) < 0) return throw_errno(env, "setpgid", errno);
  return NULL;
}

/*
 * A forked child's watch on its parents. PR_SET_PDEATHSIG sends a signal when
 * the parent dies, and again each time a subreaper that adopted the process
 * dies (prctl(2)): the zygote's death, then the server's. The signal is a
 * real-time one, which nothing else in Node uses; libuv turns it into a
 * callback on the loop, where the child asks who its parent is now (it may
 * be the same: a dying process's threads hand its children on one to the
 * next, each with the signal). The handle is unref'd: the watch alone does not keep the child alive. A second
 * call (in a child's own forked child) only changes the callback.
 */
#define PARENT_DEATH_SIGNAL (SIGRTMIN + 4)
static uv_signal_t parent_watch;
static napi_env parent_env;
static napi_ref parent_callback;
static napi_async_context parent_context;

static void on_parent_death(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  napi_handle_scope scope;
  napi_value callback, global, ignored;
  napi_open_handle_scope(parent_env, &scope);
  napi_get_reference_value(parent_env, parent_callback, &callback);
  napi_get_global(parent_env, &global);
  if (napi_make_callback(parent_env, parent_context, global, callback, 0, NULL, &ignored) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(parent_env, &err);
    napi_fatal_exception(parent_env, err);
  }
  napi_close_handle_scope(parent_env, scope);
}

/* onParentDeath(parent, callback): `parent` is the pid expected as parent now; if it is already gone, the callback comes at once. */
static napi_value js_on_parent_death(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  int32_t parent;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &parent) != napi_ok)
    return throw_errno(env, "onParentDeath", EINVAL);
  if (parent_env != NULL) {
    napi_delete_reference(env, parent_callback);
  } else {
    napi_get_uv_event_loop(env, &loop);
    napi_create_string_utf8(env, "forkserver:parent-death", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &parent_context);
    uv_signal_init(loop, &parent_watch);
    uv_unref((uv_handle_t *)&parent_watch);
  }
  napi_create_reference(env, argv[1], 1, &parent_callback);
  parent_env = env;
  /* The handler first: the signal's default action would kill this process. */
  int err = uv_signal_start(&parent_watch, on_parent_death, PARENT_DEATH_SIGNAL);
  if (err != 0) return throw_errno(env, "onParentDeath: uv_signal_start", -err);
  if (prctl(PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_PDEATHSIG)", errno);
  /* It died before it could be watched: no signal will come for it. */
  if (getppid() != parent) kill(getpid(), PARENT_DEATH_SIGNAL);
  return NULL;
}

/*
 * Gives back what the process's start-up used and freed: V8's full
 * collections for low memory (fewer, compacted heap pages), then glibc's
 * free pages (malloc_trim). About 20 ms, once, in a zygote before it serves:
 * its anonymous memory fell from 13.7 to 9.9 MB, and fork(2), which copies a
 * page-table entry for each such page, from about 1.2 to 1.1 ms.
 */
static napi_value js_shrink(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  release_heap_memory();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  return NULL;
}

/*
 * A spare may be told to go (SIGTERM) the moment it exists, before its JS
 * side has given the zygote's handlers back; one of those would take the
 * signal and leave it unread in a loop the spare never runs while it waits.
 * So the zygote holds the three signals across the fork, and the spare sets
 * their default actions before it lets them in.
 */
static void stop_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGHUP);
}

static napi_value js_hold_stops(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool hold = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1) napi_get_value_bool(env, argv[0], &hold);
  sigset_t set;
  stop_signals(&set);
  int err = pthread_sigmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
  if (err != 0) return throw_errno(env, "pthread_sigmask", err);
  return NULL;
}

static napi_value js_default_stops(napi_env env, napi_callback_info info) {
  (void)info;
  sigset_t set;
  stop_signals(&set);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = SIG_DFL;
  for (int signo = 1; signo < NSIG; signo++)
    if (sigismember(&set, signo) == 1 && sigaction(signo, &action, NULL) != 0) return throw_errno(env, "sigaction", errno);
  int err = pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  if (err != 0) return throw_errno(env, "pthread_sigmask", err);
  return NULL;
}

void register_fork(napi_env env, napi_value exports) {
  const char *times = getenv("FORKSERVER_FORK_TIMES");
  trace_times = times != NULL && *times != '\0';
  static const native_function functions[] = {
    {"fork", js_fork}, {"exit", js_exit}, {"reap", js_reap}, {"exited", js_exited},
    {"setChildSubreaper", js_set_child_subreaper}, {"getpid", js_getpid},
    {"whenIdle", js_when_idle}, {"idle", js_idle}, {"leadGroup", js_lead_group},
    {"holdStops", js_hold_stops}, {"defaultStops", js_default_stops},
    {"fillRandom", js_fill_random}, {"onParentDeath", js_on_parent_death},
    {"shrink", js_shrink},
  };
  export_functions(env, exports, functions, sizeof functions / sizeof functions[0]);
}
