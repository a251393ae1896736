// Corosync binding, its JS functions (corosyncOpen, corosyncSend, ...): one CPG group (agreed-order
// multicast and membership, cpg_overview(7)) plus quorum tracking per connection. JS thread; nothing
// here waits on corosync: an IO thread does every corosync call, the join included
// (corosync_connection.cc), and events reach JS after dispatch returns (corosync_events.cc).
// libcpg and libquorum are loaded at first use (corosync_dl.cc): without them, ERR_COROSYNC_UNAVAILABLE.
#include <napi.h>

#include <memory>
#include <string>

#include "corosync.h"
#include "errors.h"

namespace vipmta {

namespace {

using corosync::Connection;

// Distinguishes our External from any other addon handle (the spool's, for one).
constexpr napi_type_tag kConnectionTag = {0x7669706d74616373ULL, 0x636f726f73796e63ULL};

// What the External holds: a strong reference, so a send after the TSFN finalizer ran is still safe.
struct Handle {
  std::shared_ptr<Connection> conn;
};

Connection* Get(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal() || !info[0].As<Napi::External<Handle>>().CheckTypeTag(&kConnectionTag)) {
    ThrowType(env, std::string(fn) + ": not a corosync connection handle");
    return nullptr;
  }
  return info[0].As<Napi::External<Handle>>().Data()->conn.get();
}

// corosyncOpen(group, onEvents) -> handle. The join's outcome is the first event: { type: 'opened',
// localNodeId, quorate, quorumType } or { type: 'openFailed', error } (the last one then).
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    return ThrowType(env, "corosyncOpen(group, onEvents): bad arguments");
  }
  std::string group = info[0].As<Napi::String>().Utf8Value();
  if (group.empty() || group.size() > corosync::kCpgMaxNameLength) {
    return ThrowType(env, "corosyncOpen: group name must be 1.." + std::to_string(corosync::kCpgMaxNameLength) + " bytes");
  }
  std::string why;
  if (corosync::LoadApi(&why) == nullptr) return ThrowCode(env, "ERR_COROSYNC_UNAVAILABLE", why);
  auto conn = std::make_shared<Connection>();
  if (!conn->Open(env, group, info[1].As<Napi::Function>())) return env.Undefined();
  Napi::External<Handle> ext = Napi::External<Handle>::New(env, new Handle{conn}, [](Napi::Env, Handle* h) {
    // Collected without close(): close now (no JS is called from here).
    h->conn->Close();
    delete h;
  });
  ext.TypeTag(&kConnectionTag);
  return ext;
}

// corosyncLibrary() -> { available: true, cpg, quorum } (the files loaded) or { available: false,
// error } (what to install). Loads the libraries if not yet loaded (a failed load is tried again).
Napi::Value Library(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::string why;
  bool ok = corosync::LoadApi(&why) != nullptr;
  o.Set("available", Napi::Boolean::New(env, ok));
  if (ok) {
    o.Set("cpg", Napi::String::New(env, corosync::CpgPath()));
    o.Set("quorum", Napi::String::New(env, corosync::QuorumPath()));
  } else {
    o.Set("error", Napi::String::New(env, why));
  }
  return o;
}

// corosyncSend(handle, buffer) -> true when queued for agreed delivery, false when the queue is full
// (corosync has not taken a message for a long time). Copies the bytes; never blocks.
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Connection* c = Get(info, "corosyncSend");
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) return ThrowType(env, "corosyncSend: data must be a Buffer or Uint8Array");
  if (c->closed()) return ThrowCode(env, "ERR_COROSYNC_CLOSED", "the corosync group is closed");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return Napi::Boolean::New(env, c->Queue(p, ta.ByteLength()));
}

// corosyncSendState(handle) -> { queued, stalledMs }
Napi::Value SendStateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Connection* c = Get(info, "corosyncSendState");
  if (c == nullptr) return env.Undefined();
  size_t queued = 0;
  int64_t stalled = 0;
  c->SendState(&queued, &stalled);
  Napi::Object o = Napi::Object::New(env);
  o.Set("queued", Napi::Number::New(env, static_cast<double>(queued)));
  o.Set("stalledMs", Napi::Number::New(env, static_cast<double>(stalled)));
  return o;
}

Napi::Value CloseJs(const Napi::CallbackInfo& info) {
  Connection* c = Get(info, "corosyncClose");
  if (c != nullptr) c->Close();
  return info.Env().Undefined();
}

// corosyncRef(handle, bool): whether an open group keeps the event loop alive.
Napi::Value RefJs(const Napi::CallbackInfo& info) {
  Connection* c = Get(info, "corosyncRef");
  if (c == nullptr || c->closed()) return info.Env().Undefined();
  if (info.Length() >= 2 && info[1].ToBoolean().Value()) c->tsfn().Ref(info.Env());
  else c->tsfn().Unref(info.Env());
  return info.Env().Undefined();
}

}  // namespace

void InitCorosync(Napi::Env env, Napi::Object exports) {
  exports.Set("corosyncLibrary", Napi::Function::New(env, Library, "corosyncLibrary"));
  exports.Set("corosyncOpen", Napi::Function::New(env, Open, "corosyncOpen"));
  exports.Set("corosyncSend", Napi::Function::New(env, Send, "corosyncSend"));
  exports.Set("corosyncClose", Napi::Function::New(env, CloseJs, "corosyncClose"));
  exports.Set("corosyncRef", Napi::Function::New(env, RefJs, "corosyncRef"));
  exports.Set("corosyncSendState", Napi::Function::New(env, SendStateJs, "corosyncSendState"));
}

}  // namespace vipmta
