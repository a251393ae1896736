// Errors that cross the native boundary. Every system error becomes a JS Error with a stable
// `code` (the errno name, e.g. "EADDRINUSE", or one of our ERR_* codes), `errno` and `syscall`,
// so TypeScript callers match on err.code, never on message text. Main thread or worker thread:
// these only touch the Napi::Env they are given, so call them on the JS thread only.
#pragma once
#include <napi.h>
#include <string>

namespace vipmta {

// Returns the symbolic name of an errno value ("EADDRINUSE"), or "E<number>" when unknown.
const char* ErrnoName(int err);

// Builds (does not throw) an Error: message "<syscall> <detail>: <strerror> (<CODE>)".
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail = "");

// Builds an Error with one of our own stable codes (ERR_INVALID_ADDRESS, ERR_SPOOL_FULL, ...).
Napi::Error CodeError(Napi::Env env, const char* code, const std::string& message);

// Throw helpers for synchronous calls: they set the pending exception and return undefined,
// the NAPI_DISABLE_CPP_EXCEPTIONS way (no C++ exceptions cross the boundary).
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail = "");
Napi::Value ThrowCode(Napi::Env env, const char* code, const std::string& message);
Napi::Value ThrowType(Napi::Env env, const std::string& message);

}  // namespace vipmta
