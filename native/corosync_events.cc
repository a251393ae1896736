// Corosync events on their way to JS. The CPG and quorum callbacks run inside cpg_dispatch /
// quorum_dispatch on the IO thread and only copy into `pending_`: cpg_dispatch() keeps ~1 MiB on the
// C stack, and calling into V8 from inside them overflows V8's stack limit (ANCHORS.md). After
// dispatch returns, Publish moves them to `ready_` and wakes the JS thread (thread-safe function),
// where Deliver turns them into objects. Nothing here blocks; mu_ is held only to move vectors.
#include <cstring>

#include "corosync.h"
#include "errors.h"

namespace vipmta::corosync {

void Connection::Publish() {
  if (pending_.empty()) return;
  std::lock_guard<std::mutex> lk(mu_);
  for (Event& ev : pending_) ready_.push_back(std::move(ev));
  pending_.clear();
  // Its status is not acted on: napi_closing only while the environment tears down, when nobody
  // is left to deliver to; the queue is unbounded (max 0), so never napi_queue_full.
  if (!tsfnReleased_) tsfn_.NonBlockingCall();
}

void Connection::Deliver(Napi::Env env, Napi::Function callback) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lk(mu_);
    events.swap(ready_);
  }
  if (closed_ || events.empty()) return;
  bool lost = false;
  Napi::HandleScope scope(env);
  Napi::Array arr = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) {
    if (events[i].kind == Event::kDisconnected || events[i].kind == Event::kOpenFailed) lost = true;
    arr.Set(static_cast<uint32_t>(i), ToJs(env, events[i]));
  }
  if (lost) Close();  // the IO thread has stopped (or is stopping); release the TSFN and the cleanup hook
  callback.Call({arr});  // an exception thrown here is reported as uncaught by Node
}

void CallJs(Napi::Env env, Napi::Function callback, std::shared_ptr<Connection>* context, void*) {
  // env is null when the environment is being torn down with a call still queued.
  if (env == nullptr || context == nullptr || *context == nullptr) return;
  (*context)->Deliver(env, callback);
}

// ---- corosync callbacks: inside cpg_dispatch / quorum_dispatch, C++ only, no JS ----

// The context is the Connection given to cpg_model_initialize / quorum_context_set. Looking it up
// cannot fail while that very handle is being dispatched (dispatch holds it); should it ever, the
// event is dropped: without its Connection the callback has nowhere to report it.
Connection* Connection::FromCpg(cpg_handle_t h) {
  void* ctx = nullptr;
  if (Lib().cpg_context_get(h, &ctx) != CS_OK) return nullptr;
  return static_cast<Connection*>(ctx);
}

void Connection::OnDeliver(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len) {
  Connection* c = FromCpg(h);
  if (c == nullptr) return;
  Event ev(Event::kMessage);
  ev.nodeid = nodeid;
  ev.pid = pid;
  ev.len = len;
  ev.data = static_cast<uint8_t*>(malloc(len > 0 ? len : 1));
  if (ev.data == nullptr) abort();  // -fno-exceptions: out of memory is fatal, as new would be
  memcpy(ev.data, msg, len);
  c->pending_.push_back(std::move(ev));
}

void Connection::OnConfchg(cpg_handle_t h, const cpg_name*, const cpg_address* m, size_t nm, const cpg_address* l,
                           size_t nl, const cpg_address* j, size_t nj) {
  Connection* c = FromCpg(h);
  if (c == nullptr) return;
  Event ev(Event::kConfchg);
  ev.members.assign(m, m + nm);
  ev.left.assign(l, l + nl);
  ev.joined.assign(j, j + nj);
  c->pending_.push_back(std::move(ev));
}

void Connection::OnTotem(cpg_handle_t h, cpg_ring_id ring, uint32_t n, const uint32_t* members) {
  Connection* c = FromCpg(h);
  if (c == nullptr) return;
  Event ev(Event::kTotem);
  ev.nodeid = ring.nodeid;
  ev.seq = ring.seq;
  ev.nodes.assign(members, members + n);
  c->pending_.push_back(std::move(ev));
}

void Connection::OnQuorum(quorum_handle_t h, uint32_t quorate, uint64_t seq, uint32_t n, uint32_t* members) {
  const void* ctx = nullptr;
  if (Lib().quorum_context_get(h, &ctx) != CS_OK) return;  // cannot fail during this handle's dispatch; see FromCpg
  auto* c = const_cast<Connection*>(static_cast<const Connection*>(ctx));
  if (c == nullptr) return;
  Event ev(Event::kQuorum);
  ev.quorate = quorate != 0;
  ev.seq = seq;
  ev.nodes.assign(members, members + n);
  c->pending_.push_back(std::move(ev));
}

// ---- to JS ----

namespace {

const char* ReasonName(uint32_t r) {
  switch (r) {
    case CPG_REASON_JOIN: return "join";
    case CPG_REASON_LEAVE: return "leave";
    case CPG_REASON_NODEDOWN: return "nodedown";
    case CPG_REASON_NODEUP: return "nodeup";
    case CPG_REASON_PROCDOWN: return "procdown";
    default: return "undefined";
  }
}

Napi::Array Addrs(Napi::Env env, const std::vector<cpg_address>& v, bool withReason) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("nodeId", Napi::Number::New(env, v[i].nodeid));
    o.Set("pid", Napi::Number::New(env, v[i].pid));
    if (withReason) o.Set("reason", Napi::String::New(env, ReasonName(v[i].reason)));
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

Napi::Array Nodes(Napi::Env env, const std::vector<uint32_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
  return a;
}

}  // namespace

Napi::Object Connection::ToJs(Napi::Env env, Event& ev) {
  Napi::Object o = Napi::Object::New(env);
  switch (ev.kind) {
    case Event::kOpened:
      o.Set("type", "opened");
      o.Set("localNodeId", Napi::Number::New(env, ev.nodeid));
      o.Set("quorate", Napi::Boolean::New(env, ev.quorate));
      o.Set("quorumType", Napi::Number::New(env, ev.quorumType));
      break;
    case Event::kOpenFailed:
      o.Set("type", "openFailed");
      o.Set("error", CsError(env, ev.csError, ev.call).Value());
      break;
    case Event::kMessage: {
      o.Set("type", "message");
      o.Set("nodeId", Napi::Number::New(env, ev.nodeid));
      o.Set("pid", Napi::Number::New(env, ev.pid));
      // The Buffer takes the malloc'd copy without another copy; freed when JS drops it.
      uint8_t* data = ev.data;
      ev.data = nullptr;
      o.Set("data", Napi::Buffer<uint8_t>::NewOrCopy(env, data, ev.len, [](Napi::Env, uint8_t* p) { free(p); }));
      break;
    }
    case Event::kConfchg:
      o.Set("type", "confchg");
      o.Set("group", Napi::String::New(env, group_));
      o.Set("members", Addrs(env, ev.members, false));
      o.Set("left", Addrs(env, ev.left, true));
      o.Set("joined", Addrs(env, ev.joined, true));
      break;
    case Event::kTotem:
      o.Set("type", "totem");
      // Ring sequence numbers grow by a handful per view change: far below 2^53.
      o.Set("ringId", [&]() {
        Napi::Object r = Napi::Object::New(env);
        r.Set("nodeId", Napi::Number::New(env, ev.nodeid));
        r.Set("seq", Napi::Number::New(env, static_cast<double>(ev.seq)));
        return r;
      }());
      o.Set("members", Nodes(env, ev.nodes));
      break;
    case Event::kQuorum:
      o.Set("type", "quorum");
      o.Set("quorate", Napi::Boolean::New(env, ev.quorate));
      o.Set("ringSeq", Napi::Number::New(env, static_cast<double>(ev.seq)));
      o.Set("members", Nodes(env, ev.nodes));
      break;
    case Event::kDisconnected: {
      o.Set("type", "error");
      o.Set("error", CodeError(env, "ERR_COROSYNC_DISCONNECTED", ev.detail).Value());
      break;
    }
  }
  return o;
}

}  // namespace vipmta::corosync
