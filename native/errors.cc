// Implementation of the error helpers in errors.h: errors are made by calling the JS class the
// loader registered with setErrorClass (better-sqlite3's pattern), so they are real instances of
// it. JS thread only.
#include "errors.h"

#include <cerrno>
#include <cstring>

namespace vipmta {
namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "setErrorClass: expected a class");
  EnvData* d = env.GetInstanceData<EnvData>();
  d->error_class.Reset(info[0].As<Napi::Function>(), 1);
  return env.Undefined();
}

// new ErrorClass(code, message, { errno, syscall }), or (before setErrorClass, or should the
// constructor itself throw) a plain Error with the same properties, so an error is never lost.
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message, int err, const char* syscall) {
  EnvData* d = env.GetInstanceData<EnvData>();
  if (d != nullptr && !d->error_class.IsEmpty()) {
    Napi::Object extra = Napi::Object::New(env);
    if (err != 0) extra.Set("errno", Napi::Number::New(env, err));
    if (syscall != nullptr) extra.Set("syscall", Napi::String::New(env, syscall));
    Napi::Object o = d->error_class.New({Napi::String::New(env, code), Napi::String::New(env, message), extra});
    if (!o.IsEmpty() && !env.IsExceptionPending()) return Napi::Error(env, o);
    if (env.IsExceptionPending()) (void)env.GetAndClearPendingException();
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  if (err != 0) e.Set("errno", Napi::Number::New(env, err));
  if (syscall != nullptr) e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

}  // namespace

void InitErrors(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new EnvData());  // deleted by Node-API when the env goes away
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

const char* ErrnoName(int err) {
  // glibc >= 2.32 knows every errno's symbolic name; keep a fallback for anything it does not.
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  thread_local char buf[24];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail, const char* code) {
  std::string msg = syscall;
  if (!detail.empty()) msg += " " + detail;
  msg += ": ";
  msg += strerror(err);
  msg += " (";
  msg += ErrnoName(err);
  msg += ")";
  return MakeError(env, code != nullptr ? code : ErrnoName(err), msg, err, syscall);
}

Napi::Error CodeError(Napi::Env env, const char* code, const std::string& message) {
  return MakeError(env, code, message, 0, nullptr);
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
