// Corosync binding: one CPG group (closed process group: agreed-order multicast and membership,
// cpg_overview(7)) plus quorum tracking (quorum_overview(3)) per connection. A native poll thread
// per connection only waits for the two IPC fds to become readable and wakes the JS thread through
// a thread-safe function; dispatch, send and close all run on the JS thread that opened it. Calls
// into libcpg are IPC round trips to the local corosync: short, but they block if it is stopped.
//
// Why dispatch queues instead of calling JavaScript: cpg_dispatch() keeps about 1 MiB on the C
// stack, and calling into V8 from inside its callbacks overflows V8's stack limit (ANCHORS.md).
// The callbacks below only copy into `pending_`; JavaScript sees the events after dispatch returns.
//
// Built without corosync's headers (binding.gyp checks pkg-config), corosyncOpen throws
// ERR_COROSYNC_UNAVAILABLE: single-node mode needs no corosync.
#include <napi.h>

#include "errors.h"

#ifdef VIPMTA_HAVE_COROSYNC
#if !__has_include(<corosync/cpg.h>) || !__has_include(<corosync/quorum.h>)
#error "VIPMTA_HAVE_COROSYNC is set but corosync/cpg.h or corosync/quorum.h is missing"
#endif
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
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
  for (const char* name : {"corosyncOpen", "corosyncSend", "corosyncClose", "corosyncRef"}) {
    exports.Set(name, Napi::Function::New(env, Unavailable, name));
  }
}

#else  // VIPMTA_HAVE_COROSYNC

namespace {

// Distinguishes our External from any other addon handle (the spool's, for one).
constexpr napi_type_tag kConnectionTag = {0x7669706d74616373ULL, 0x636f726f73796e63ULL};

const char* CsName(cs_error_t e) {
  switch (e) {
    case CS_OK: return "CS_OK";
    case CS_ERR_LIBRARY: return "CS_ERR_LIBRARY";
    case CS_ERR_TRY_AGAIN: return "CS_ERR_TRY_AGAIN";
    case CS_ERR_INVALID_PARAM: return "CS_ERR_INVALID_PARAM";
    case CS_ERR_NO_MEMORY: return "CS_ERR_NO_MEMORY";
    case CS_ERR_BAD_HANDLE: return "CS_ERR_BAD_HANDLE";
    case CS_ERR_ACCESS: return "CS_ERR_ACCESS";
    case CS_ERR_NOT_EXIST: return "CS_ERR_NOT_EXIST";
    case CS_ERR_EXIST: return "CS_ERR_EXIST";
    case CS_ERR_NO_RESOURCES: return "CS_ERR_NO_RESOURCES";
    case CS_ERR_NOT_SUPPORTED: return "CS_ERR_NOT_SUPPORTED";
    case CS_ERR_MESSAGE_ERROR: return "CS_ERR_MESSAGE_ERROR";
    case CS_ERR_TOO_BIG: return "CS_ERR_TOO_BIG";
    default: return "CS_ERR";
  }
}

// A corosync error as a JS error: code ERR_COROSYNC_NOT_RUNNING when the library could not reach
// the daemon (CS_ERR_LIBRARY: its IPC socket is absent in this network namespace), else ERR_COROSYNC
// with the cs_error_t name; `csError` carries the number, `call` the library function.
Napi::Error CsError(Napi::Env env, cs_error_t e, const char* call) {
  Napi::Error err = e == CS_ERR_LIBRARY
      ? CodeError(env, "ERR_COROSYNC_NOT_RUNNING",
                  std::string(call) + ": corosync is not running (or not in this network namespace)")
      : e == CS_ERR_ACCESS
      ? CodeError(env, "ERR_COROSYNC", std::string(call) + ": permission denied by corosync (CS_ERR_ACCESS): "
                  "run as root or allow this user in corosync.conf uidgid")
      : CodeError(env, "ERR_COROSYNC", std::string(call) + " failed: " + CsName(e));
  err.Set("csError", Napi::Number::New(env, e));
  err.Set("call", Napi::String::New(env, call));
  return err;
}

// One event, copied out of a corosync callback; turned into a JS object after dispatch returns.
struct Event {
  enum Kind { kMessage, kConfchg, kTotem, kQuorum, kDisconnected } kind;
  uint32_t nodeid = 0;
  uint32_t pid = 0;
  uint8_t* data = nullptr;  // kMessage: malloc'd, ownership passes to the JS Buffer
  size_t len = 0;
  std::vector<cpg_address> members, left, joined;  // kConfchg
  std::vector<uint32_t> nodes;                     // kTotem, kQuorum
  uint64_t seq = 0;                                // ring sequence (kTotem, kQuorum)
  bool quorate = false;                            // kQuorum
  std::string detail;                              // kDisconnected

  Event(Kind k) : kind(k) {}
  Event(Event&& o) noexcept { *this = std::move(o); }
  Event& operator=(Event&& o) noexcept {
    kind = o.kind; nodeid = o.nodeid; pid = o.pid; data = o.data; len = o.len;
    members = std::move(o.members); left = std::move(o.left); joined = std::move(o.joined);
    nodes = std::move(o.nodes); seq = o.seq; quorate = o.quorate; detail = std::move(o.detail);
    o.data = nullptr;
    return *this;
  }
  ~Event() { free(data); }
};

class Connection;
void CallJs(Napi::Env env, Napi::Function callback, std::shared_ptr<Connection>* context, void* data);
using Tsfn = Napi::TypedThreadSafeFunction<std::shared_ptr<Connection>, void, CallJs>;

class Connection {
 public:
  ~Connection() { Shutdown(); }

  // Connects, joins `group`, starts quorum tracking and the poll thread. Throws (pending) on failure.
  bool Open(Napi::Env env, const std::string& group, Napi::Function onEvents, const std::shared_ptr<Connection>& self) {
    cpg_model_v1_data_t model{};
    model.model = CPG_MODEL_V1;
    model.cpg_deliver_fn = OnDeliver;
    model.cpg_confchg_fn = OnConfchg;
    model.cpg_totem_confchg_fn = OnTotem;
    model.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
    cs_error_t e = cpg_model_initialize(&cpg_, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), this);
    if (e != CS_OK) return Fail(env, e, "cpg_model_initialize");
    cpgOpen_ = true;

    quorum_callbacks_t qcb{};
    qcb.quorum_notify_fn = OnQuorum;
    uint32_t quorumType = 0;
    e = quorum_initialize(&quorum_, &qcb, &quorumType);
    if (e != CS_OK) return Fail(env, e, "quorum_initialize");
    quorumOpen_ = true;
    quorumType_ = quorumType;
    if ((e = quorum_context_set(quorum_, this)) != CS_OK) return Fail(env, e, "quorum_context_set");

    if ((e = cpg_local_get(cpg_, &localNodeId_)) != CS_OK) return Fail(env, e, "cpg_local_get");
    int q = 0;
    if ((e = quorum_getquorate(quorum_, &q)) != CS_OK) return Fail(env, e, "quorum_getquorate");
    quorate_ = q != 0;

    cpg_name name{};
    name.length = static_cast<uint32_t>(group.size());
    memcpy(name.value, group.data(), group.size());
    if ((e = cpg_join(cpg_, &name)) != CS_OK) return Fail(env, e, "cpg_join");
    group_ = group;
    // CS_TRACK_CURRENT: one notification with the present state at once, then every change.
    if ((e = quorum_trackstart(quorum_, CS_TRACK_CURRENT | CS_TRACK_CHANGES)) != CS_OK) return Fail(env, e, "quorum_trackstart");

    if ((e = cpg_fd_get(cpg_, &cpgFd_)) != CS_OK) return Fail(env, e, "cpg_fd_get");
    if ((e = quorum_fd_get(quorum_, &quorumFd_)) != CS_OK) return Fail(env, e, "quorum_fd_get");
    stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stopFd_ < 0) {
      int err = errno;
      Shutdown();
      ThrowErrno(env, err, "eventfd");
      return false;
    }

    // The context (a shared_ptr copy) is deleted by the finalizer, which runs only after the last
    // queued call: a wake-up queued just before close() never sees a freed Connection.
    tsfn_ = Tsfn::New(env, onEvents, "vipmta:corosync", 0, 1, new std::shared_ptr<Connection>(self),
                      [](Napi::Env, void*, std::shared_ptr<Connection>* ctx) { delete ctx; });
    tsfnLive_ = true;
    // Worker termination or process exit without close(): stop the thread and leave the group
    // before the environment (and with it the thread-safe function) goes away. Registered after
    // the TSFN, so it runs before the TSFN's own teardown (hooks run in reverse order).
    cleanup_ = env.AddCleanupHook(&Connection::CleanupHook, this);
    cleanupLive_ = true;

    // The thread only polls; cpg_dispatch (and its 1 MiB of stack) runs on the JS thread, which has
    // 8 MiB (main) or 4 MiB (worker default) of it.
    thread_ = std::thread([this]() { PollLoop(); });
    return true;
  }

  // Sends one message in agreed order (CPG_TYPE_AGREED). CS_ERR_TRY_AGAIN is flow control.
  cs_error_t Send(const void* data, size_t len) {
    iovec iov{const_cast<void*>(data), len};
    return cpg_mcast_joined(cpg_, CPG_TYPE_AGREED, &iov, 1);
  }

  // JS thread. Idempotent: stops the poll thread, leaves and disconnects, releases the TSFN.
  void Close() {
    if (closed_) return;
    closed_ = true;
    Shutdown();
    if (tsfnLive_) {
      tsfnLive_ = false;
      tsfn_.Release();
    }
    if (cleanupLive_) {
      cleanupLive_ = false;
      cleanup_.Remove(env_);
    }
  }

  // JS thread, from the TSFN: dispatch what is readable, then hand the queued events to JS.
  void Dispatch(Napi::Env env, Napi::Function callback) {
    if (closed_) return;
    bool cpgReady, quorumReady, hup;
    {
      std::lock_guard<std::mutex> lk(mu_);
      cpgReady = cpgReady_;
      quorumReady = quorumReady_;
      hup = hup_;
    }
    cs_error_t e1 = cpgReady ? cpg_dispatch(cpg_, CS_DISPATCH_ALL) : CS_OK;
    cs_error_t e2 = quorumReady ? quorum_dispatch(quorum_, CS_DISPATCH_ALL) : CS_OK;
    std::vector<Event> events;
    events.swap(pending_);
    bool lost = hup || (e1 != CS_OK && e1 != CS_ERR_TRY_AGAIN) || (e2 != CS_OK && e2 != CS_ERR_TRY_AGAIN);
    if (lost) {
      Event ev(Event::kDisconnected);
      ev.detail = std::string("lost the connection to corosync (") +
                  (hup ? "IPC socket closed" : CsName(e1 != CS_OK ? e1 : e2)) + ")";
      events.push_back(std::move(ev));
      Close();  // nothing more will come: stop polling a dead fd
    } else {
      std::lock_guard<std::mutex> lk(mu_);
      waiting_ = false;
      cv_.notify_one();
    }
    if (events.empty()) return;
    Napi::HandleScope scope(env);
    Napi::Array arr = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); i++) arr.Set(static_cast<uint32_t>(i), ToJs(env, events[i]));
    callback.Call({arr});  // an exception thrown here is reported as uncaught by Node
  }

  void SetEnv(Napi::Env env) { env_ = env; }
  uint32_t localNodeId() const { return localNodeId_; }
  bool quorate() const { return quorate_; }
  uint32_t quorumType() const { return quorumType_; }
  bool closed() const { return closed_; }
  Tsfn& tsfn() { return tsfn_; }

 private:
  static void CleanupHook(Connection* c) {
    // node-addon-api frees the hook's data after this returns: removing it from inside would free
    // it twice, so mark it gone instead.
    c->cleanupLive_ = false;
    c->Close();
  }

  bool Fail(Napi::Env env, cs_error_t e, const char* call) {
    Shutdown();
    CsError(env, e, call).ThrowAsJavaScriptException();
    return false;
  }

  // Stops the thread and releases corosync resources; no JS. Safe to call more than once.
  void Shutdown() {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
        cv_.notify_one();
      }
      uint64_t one = 1;
      ssize_t n = write(stopFd_, &one, sizeof one);
      (void)n;  // eventfd write cannot fail short of overflow; the flag above also stops the loop
      thread_.join();
    }
    if (stopFd_ >= 0) close(stopFd_);
    stopFd_ = -1;
    // An explicit leave first: cpg_finalize alone looks to the others like a crash (reason
    // PROCDOWN); after cpg_leave they see reason LEAVE, which tells a planned exit from a dead process.
    if (cpgOpen_ && !group_.empty()) {
      cpg_name name{};
      name.length = static_cast<uint32_t>(group_.size());
      memcpy(name.value, group_.data(), group_.size());
      cpg_leave(cpg_, &name);  // fails harmlessly when corosync is already gone
    }
    if (cpgOpen_) cpg_finalize(cpg_);
    if (quorumOpen_) quorum_finalize(quorum_);
    cpgOpen_ = quorumOpen_ = false;
  }

  // Poll thread: wait for readability, wake JS, then wait until JS has dispatched (the fds are
  // level-triggered: polling again before dispatch would spin).
  void PollLoop() {
    for (;;) {
      pollfd fds[3] = {{stopFd_, POLLIN, 0}, {cpgFd_, POLLIN, 0}, {quorumFd_, POLLIN, 0}};
      int n = poll(fds, 3, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents != 0) break;
      std::unique_lock<std::mutex> lk(mu_);
      if (stopping_) break;
      cpgReady_ = fds[1].revents != 0;
      quorumReady_ = fds[2].revents != 0;
      hup_ = ((fds[1].revents | fds[2].revents) & (POLLHUP | POLLERR | POLLNVAL)) != 0 &&
             !((fds[1].revents | fds[2].revents) & POLLIN);
      waiting_ = true;
      lk.unlock();
      if (tsfn_.NonBlockingCall() != napi_ok) break;  // closing: the environment is going away
      lk.lock();
      cv_.wait(lk, [this]() { return !waiting_ || stopping_; });
      if (stopping_) break;
    }
  }

  static Connection* FromCpg(cpg_handle_t h) {
    void* ctx = nullptr;
    cpg_context_get(h, &ctx);
    return static_cast<Connection*>(ctx);
  }

  // ---- corosync callbacks: inside cpg_dispatch / quorum_dispatch, C++ only, no JS ----

  static void OnDeliver(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len) {
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

  static void OnConfchg(cpg_handle_t h, const cpg_name*, const cpg_address* m, size_t nm, const cpg_address* l,
                        size_t nl, const cpg_address* j, size_t nj) {
    Connection* c = FromCpg(h);
    if (c == nullptr) return;
    Event ev(Event::kConfchg);
    ev.members.assign(m, m + nm);
    ev.left.assign(l, l + nl);
    ev.joined.assign(j, j + nj);
    c->pending_.push_back(std::move(ev));
  }

  static void OnTotem(cpg_handle_t h, cpg_ring_id ring, uint32_t n, const uint32_t* members) {
    Connection* c = FromCpg(h);
    if (c == nullptr) return;
    Event ev(Event::kTotem);
    ev.nodeid = ring.nodeid;
    ev.seq = ring.seq;
    ev.nodes.assign(members, members + n);
    c->pending_.push_back(std::move(ev));
  }

  static void OnQuorum(quorum_handle_t h, uint32_t quorate, uint64_t seq, uint32_t n, uint32_t* members) {
    const void* ctx = nullptr;
    quorum_context_get(h, &ctx);
    auto* c = const_cast<Connection*>(static_cast<const Connection*>(ctx));
    if (c == nullptr) return;
    c->quorate_ = quorate != 0;
    Event ev(Event::kQuorum);
    ev.quorate = quorate != 0;
    ev.seq = seq;
    ev.nodes.assign(members, members + n);
    c->pending_.push_back(std::move(ev));
  }

  // ---- to JS ----

  static const char* ReasonName(uint32_t r) {
    switch (r) {
      case CPG_REASON_JOIN: return "join";
      case CPG_REASON_LEAVE: return "leave";
      case CPG_REASON_NODEDOWN: return "nodedown";
      case CPG_REASON_NODEUP: return "nodeup";
      case CPG_REASON_PROCDOWN: return "procdown";
      default: return "undefined";
    }
  }

  static Napi::Array Addrs(Napi::Env env, const std::vector<cpg_address>& v, bool withReason) {
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

  static Napi::Array Nodes(Napi::Env env, const std::vector<uint32_t>& v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
    return a;
  }

  Napi::Object ToJs(Napi::Env env, Event& ev) {
    Napi::Object o = Napi::Object::New(env);
    switch (ev.kind) {
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

  cpg_handle_t cpg_ = 0;
  quorum_handle_t quorum_ = 0;
  bool cpgOpen_ = false, quorumOpen_ = false;
  int cpgFd_ = -1, quorumFd_ = -1, stopFd_ = -1;
  uint32_t localNodeId_ = 0, quorumType_ = 0;
  bool quorate_ = false;
  std::string group_;
  std::vector<Event> pending_;  // filled by callbacks during dispatch, JS thread only

  Napi::Env env_ = nullptr;
  Tsfn tsfn_;
  bool tsfnLive_ = false;
  Napi::Env::CleanupHook<void (*)(Connection*), Connection> cleanup_;
  bool cleanupLive_ = false;
  bool closed_ = false;

  std::thread thread_;
  std::mutex mu_;  // guards the flags below, shared with the poll thread
  std::condition_variable cv_;
  bool waiting_ = false, stopping_ = false, cpgReady_ = false, quorumReady_ = false, hup_ = false;
};

void CallJs(Napi::Env env, Napi::Function callback, std::shared_ptr<Connection>* context, void*) {
  // env is null when the environment is being torn down with a call still queued.
  if (env == nullptr || context == nullptr || *context == nullptr) return;
  (*context)->Dispatch(env, callback);
}

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
  conn->SetEnv(env);
  if (!conn->Open(env, group, info[1].As<Napi::Function>(), conn)) return env.Undefined();
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

// corosyncSend(handle, buffer) -> true when queued for agreed delivery, false on flow control
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Connection* c = Get(info, "corosyncSend");
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) return ThrowType(env, "corosyncSend: data must be a Buffer or Uint8Array");
  if (c->closed()) return ThrowCode(env, "ERR_COROSYNC_CLOSED", "the corosync group is closed");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  // libcpg copies the data into its IPC buffer before returning: no reference is kept.
  cs_error_t e = c->Send(p, ta.ByteLength());
  if (e == CS_ERR_TRY_AGAIN) return Napi::Boolean::New(env, false);
  if (e != CS_OK) {
    CsError(env, e, "cpg_mcast_joined").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
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
}

#endif  // VIPMTA_HAVE_COROSYNC

}  // namespace vipmta
