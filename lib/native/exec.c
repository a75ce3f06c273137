/*
 * exec.c: --exec, a program in place of a Node child, started with the
 * connection's socket as its stdin and stdout, a session of its own and
 * default signals, as tcpserver starts one.
 *
 *   spawnProgram(fd, file, argv, env) -> the program's pid, started by
 *                          posix_spawnp as execProgram would start it, with no
 *                          copy of this process; 0 when it cannot be started
 *                          (the zygote, for each connection)
 *   execProgram(fd, file, argv, env, failure) -> in a forked child: fd as stdin
 *                          and stdout, a session of its own, default signals, execvp;
 *                          never returns (when it fails: `failure`, _exit 127 or 126)
 *                          (the child the zygote forks when spawnProgram returned 0:
 *                          it fails the same exec and says why)
 */
#include "native.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

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
 * returns. When execvp fails, the warning line lib/serve/exec.ts formatted in the
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
    failure = c_string(env, args[4]); /* the log line, in the server's format, built by lib/serve/exec.ts */
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

void register_exec(napi_env env, napi_value exports) {
  static const native_function functions[] = {
    {"execProgram", js_exec_program}, {"spawnProgram", js_spawn_program},
  };
  export_functions(env, exports, functions, sizeof functions / sizeof functions[0]);
}
