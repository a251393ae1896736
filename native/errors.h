// Errors that cross the native boundary. Every error the addon raises is an instance of the JS
// class the loader hands over once at load (setErrorClass, src/native/addon.ts: VipError of
// src/errors.ts), with a stable `code` (the errno name, e.g. "EADDRINUSE", or one of our ERR_*
// codes) and, for system errors, `errno` and `syscall`: TypeScript matches on err.code (or
// instanceof), never on message text. JS thread only: these touch the Napi::Env they are given.
#pragma once
#include <napi.h>
#include <string>

namespace vipmta {

// The addon's per-env instance data (Node-API has one slot per env and addon; add fields here).
struct EnvData {
  Napi::FunctionReference error_class;  // new (code, message, { errno?, syscall? })
};

// Creates the env's EnvData and registers setErrorClass(cls) on exports. Called first by Init.
void InitErrors(Napi::Env env, Napi::Object exports);

// Returns the symbolic name of an errno value ("EADDRINUSE"), or "E<number>" when unknown.
const char* ErrnoName(int err);

// Builds (does not throw) an error: message "<syscall> <detail>: <strerror> (<CODE>)", code the
// errno name unless `code` (ERR_SPOOL_FULL for ENOSPC, ...) is given; errno and syscall set.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail = "",
                       const char* code = nullptr);

// Builds an error with one of our own stable codes (ERR_INVALID_ADDRESS, ERR_SPOOL_FULL, ...).
Napi::Error CodeError(Napi::Env env, const char* code, const std::string& message);

// Throw helpers for synchronous calls: they set the pending exception and return undefined,
// the NAPI_DISABLE_CPP_EXCEPTIONS way (no C++ exceptions cross the boundary).
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail = "");
Napi::Value ThrowCode(Napi::Env env, const char* code, const std::string& message);
// Argument errors stay TypeErrors (code ERR_INVALID_ARG_TYPE), as Node's own functions throw them.
Napi::Value ThrowType(Napi::Env env, const std::string& message);

}  // namespace vipmta
