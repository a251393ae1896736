// Implementation of the error helpers in errors.h. JS thread only.
#include "errors.h"

#include <cerrno>
#include <cstring>

namespace vipmta {

const char* ErrnoName(int err) {
  // glibc >= 2.32 knows every errno's symbolic name; keep a fallback for anything it does not.
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  thread_local char buf[24];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  std::string msg = syscall;
  if (!detail.empty()) msg += " " + detail;
  msg += ": ";
  msg += strerror(err);
  msg += " (";
  msg += ErrnoName(err);
  msg += ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Error CodeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  ErrnoError(env, err, syscall, detail).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowCode(Napi::Env env, const char* code, const std::string& message) {
  CodeError(env, code, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace vipmta
