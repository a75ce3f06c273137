/*
 * addon.c: the module's init, loaded by lib/zygote/warm-fork.ts (loadWarmFork) in
 * every process that uses the addon (the parent, the zygote, a prefork
 * worker; a forked child has it from the zygote). The exports come from one
 * file per concern: fork.c (fork and reap), exec.c (--exec's program) and
 * socket.c (peeks, the log, a listener's backlog).
 *
 *   nodeVersion         -> the Node version this was compiled against
 *                          (loadWarmFork refuses the addon for any other)
 */
#include "native.h"

void export_functions(napi_env env, napi_value exports, const native_function *functions, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
}

NAPI_MODULE_INIT() {
  register_fork(env, exports);
  register_exec(env, exports);
  register_socket(env, exports);
  napi_value version;
  napi_create_string_utf8(env, "v" NODE_VERSION_STRING, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "nodeVersion", version);
  return exports;
}
