// Corosync binding, its JS functions (corosyncOpen, corosyncSend, ...): one CPG group (agreed-order
// multicast and membership, cpg_overview(7)) plus quorum tracking per connection. JS thread; after
// the join nothing here waits on corosync: an IO thread does every later call (corosync_connection.cc)
// and events reach JS after dispatch returns (corosync_events.cc). Built without corosync's headers
// (binding.gyp checks pkg-config), they throw ERR_COROSYNC_UNAVAILABLE: single-node needs no corosync.
#include <napi.h>

#include "errors.h"

#ifdef VIPMTA_HAVE_COROSYNC
#if !__has_include(<corosync/cpg.h>) || !__has_include(<corosync/quorum.h>)
#error "VIPMTA_HAVE_COROSYNC is set but corosync/cpg.h or corosync/quorum.h is missing"
#endif
#include <memory>
#include <string>

#include "corosync.h"
#endif

namespace vipmta {

#ifndef VIPMTA_HAVE_COROSYNC

namespace {
Napi::Value Unavailable(const Napi::CallbackInfo& info) {
  return ThrowCode(info.Env(), "ERR_COROSYNC_UNAVAILABLE",
                   "this vipmta was built without corosync support: install libcpg-dev libquorum-dev (Debian) and rebuild");
}
}  // namespace

void InitCorosync(Napi::Env env, Napi::Object exports) {
  exports.Set("corosyncSupported", Napi::Boolean::New(env, false));
  for (const char* name : {"corosyncOpen", "corosyncSend", "corosyncClose", "corosyncRef", "corosyncSendState"}) {
    exports.Set(name, Napi::Function::New(env, Unavailable, name));
  }
}

#else  // VIPMTA_HAVE_COROSYNC

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

// corosyncOpen(group, onEvents) -> { handle, localNodeId, quorate, quorumType }
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    return ThrowType(env, "corosyncOpen(group, onEvents): bad arguments");
  }
  std::string group = info[0].As<Napi::String>().Utf8Value();
  if (group.empty() || group.size() > CPG_MAX_NAME_LENGTH) {
    return ThrowType(env, "corosyncOpen: group name must be 1.." + std::to_string(CPG_MAX_NAME_LENGTH) + " bytes");
  }
  auto conn = std::make_shared<Connection>();
  if (!conn->Open(env, group, info[1].As<Napi::Function>())) return env.Undefined();
  Napi::External<Handle> ext = Napi::External<Handle>::New(env, new Handle{conn}, [](Napi::Env, Handle* h) {
    // Collected without close(): close now (no JS is called from here).
    h->conn->Close();
    delete h;
  });
  ext.TypeTag(&kConnectionTag);
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", ext);
  out.Set("localNodeId", Napi::Number::New(env, conn->localNodeId()));
  out.Set("quorate", Napi::Boolean::New(env, conn->quorate()));
  out.Set("quorumType", Napi::Number::New(env, conn->quorumType()));
  return out;
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
  exports.Set("corosyncSupported", Napi::Boolean::New(env, true));
  exports.Set("corosyncOpen", Napi::Function::New(env, Open, "corosyncOpen"));
  exports.Set("corosyncSend", Napi::Function::New(env, Send, "corosyncSend"));
  exports.Set("corosyncClose", Napi::Function::New(env, CloseJs, "corosyncClose"));
  exports.Set("corosyncRef", Napi::Function::New(env, RefJs, "corosyncRef"));
  exports.Set("corosyncSendState", Napi::Function::New(env, SendStateJs, "corosyncSendState"));
}

#endif  // VIPMTA_HAVE_COROSYNC

}  // namespace vipmta
