/*
 * native.h: what the addon's C files share: the headers, how an errno
 * becomes a JS Error, the one argument helper more than one file uses, and
 * the function by which each file adds its exports to the module (addon.c
 * calls them). Every .c file includes this first: _GNU_SOURCE must come
 * before any system header.
 */
#ifndef FORKSERVER_NATIVE_H
#define FORKSERVER_NATIVE_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <node_version.h> /* first: it sets the NAPI_VERSION node_api.h builds for */
#include <node_api.h>
#include <uv.h>

/* Throws a JS Error for an errno value: code "EAGAIN", message "fork: Resource temporarily unavailable". */
static inline napi_value throw_errno(napi_env env, const char *call, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", call, strerror(err));
  napi_throw_error(env, uv_err_name(-err), message);
  return NULL;
}

/* The first argument as an int32, or `fallback` when it is missing or undefined. */
static inline int int_arg(napi_env env, napi_callback_info info, int fallback) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type = napi_undefined;
  int32_t value = fallback;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 &&
      napi_typeof(env, argv[0], &type) == napi_ok && type == napi_number)
    napi_get_value_int32(env, argv[0], &value);
  return value;
}

/* An export: its JS name and the function behind it. */
typedef struct {
  const char *name;
  napi_callback fn;
} native_function;

/* Sets each of `count` functions on exports under its name (addon.c). */
void export_functions(napi_env env, napi_value exports, const native_function *functions, size_t count);

/* Each file's exports, set on the module's exports by addon.c's init. */
void register_fork(napi_env env, napi_value exports);   /* fork.c */
void register_exec(napi_env env, napi_value exports);   /* exec.c */
void register_socket(napi_env env, napi_value exports); /* socket.c */

#endif
