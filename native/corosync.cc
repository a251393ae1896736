// Corosync binding: one CPG group (closed process group: agreed-order multicast and membership,
// cpg_overview(7)) plus quorum tracking (quorum_overview(3)) per connection. A native poll thread
// per connection does every libcpg/libquorum call after the join (dispatch, send, leave, finalize)
// and hands events to the JS thread through a thread-safe function. Those calls are IPC round trips
// to the local corosync that block indefinitely while it is stopped (SIGSTOP, measured: sends and
// cpg_leave hang), so JavaScript only queues sends and never waits on corosync after the join.
//
// Why dispatch queues instead of calling JavaScript: cpg_dispatch() keeps about 1 MiB on the C
// stack, and calling into V8 from inside its callbacks overflows V8's stack limit (ANCHORS.md).
// The callbacks below only copy into `pending_` (on the IO thread); JavaScript sees them later.
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
#include <chrono>
#include <condition_variable>
#include <deque>
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
  for (const char* name : {"corosyncOpen", "corosyncSend", "corosyncClose", "corosyncRef", "corosyncSendState"}) {
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

// Upper bound of messages queued for sending: corosync stopped (SIGSTOP) or wedged must not grow
// memory without end. Announces are small and rare; 4096 is minutes of normal traffic.
constexpr size_t kMaxQueuedSends = 4096;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  ~Connection() {
    // The IO thread holds a shared_ptr to us, so this runs either on it (it dropped the last
    // reference on its way out) or after it finished: never join ourselves.
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) thread_.detach();
      else thread_.join();
    }
    if (wakeFd_ >= 0) close(wakeFd_);
  }

  // Connects, joins `group`, starts quorum tracking and the IO thread. Throws (pending) on failure.
  // These first calls are synchronous IPC on the JS thread: corosync answers them at once when it
  // runs, and CS_ERR_LIBRARY at once when it does not.
  bool Open(Napi::Env env, const std::string& group, Napi::Function onEvents) {
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
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd_ < 0) {
      int err = errno;
      Finalize();
      ThrowErrno(env, err, "eventfd");
      return false;
    }

    // The context (a shared_ptr copy) is deleted by the finalizer, which runs only after the last
    // queued call: a wake-up queued just before close() never sees a freed Connection.
    tsfn_ = Tsfn::New(env, onEvents, "vipmta:corosync", 0, 1, new std::shared_ptr<Connection>(shared_from_this()),
                      [](Napi::Env, void*, std::shared_ptr<Connection>* ctx) { delete ctx; });
    tsfnLive_ = true;
    env_ = env;
    // Worker termination or process exit without close(): stop the thread and leave the group
    // before the environment (and with it the thread-safe function) goes away. Registered after
    // the TSFN, so it runs before the TSFN's own teardown (hooks run in reverse order).
    cleanup_ = env.AddCleanupHook(&Connection::CleanupHook, this);
    cleanupLive_ = true;

    // From here on every corosync call (dispatch, send, leave, finalize) runs on the IO thread:
    // libcpg is then used from one thread only, and an IPC call that blocks (corosync SIGSTOPped
    // blocks cpg_mcast_joined and cpg_leave indefinitely, measured) never blocks JavaScript.
    std::shared_ptr<Connection> self = shared_from_this();
    thread_ = std::thread([self]() { self->IoLoop(); });
    return true;
  }

  // JS thread: queues one message for agreed-order multicast (CPG_TYPE_AGREED); false when the
  // queue is full (corosync is not taking messages).
  bool Queue(const uint8_t* data, size_t len) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (outq_.size() >= kMaxQueuedSends) return false;
      outq_.push_back(Outgoing{NowMs(), std::vector<uint8_t>(data, data + len)});
    }
    Wake();
    return true;
  }

  // JS thread: messages waiting, and how long corosync has kept us waiting: the age of the oldest
  // unsent message or of a corosync call that has not returned, whichever is older (0 when idle).
  // A stopped corosync shows here long before anything else (a full ring gives CS_ERR_TRY_AGAIN,
  // some calls simply block: both count).
  void SendState(size_t* queued, int64_t* stalledMs) {
    std::lock_guard<std::mutex> lk(mu_);
    *queued = outq_.size();
    int64_t since = callSince_;
    if (!outq_.empty() && (since == 0 || outq_.front().at < since)) since = outq_.front().at;
    if (inFlightAt_ != 0 && (since == 0 || inFlightAt_ < since)) since = inFlightAt_;
    *stalledMs = since == 0 ? 0 : NowMs() - since;
  }

  // JS thread. Idempotent and never blocks for long: asks the IO thread to leave the group and
  // disconnect, waits up to 200 ms for it, and otherwise lets it finish on its own (it keeps the
  // Connection alive through its shared_ptr). The TSFN is released here, so no event reaches JS
  // after close().
  void Close() {
    if (closed_) return;
    closed_ = true;
    bool finished;
    {
      std::unique_lock<std::mutex> lk(mu_);
      stopping_ = true;
      tsfnReleased_ = true;  // the IO thread checks this under mu_ before every NonBlockingCall
      Wake();
      finished = doneCv_.wait_for(lk, std::chrono::milliseconds(200), [this]() { return done_; });
    }
    if (finished && thread_.joinable()) thread_.join();
    else if (thread_.joinable()) thread_.detach();
    if (tsfnLive_) {
      tsfnLive_ = false;
      tsfn_.Release();
    }
    if (cleanupLive_) {
      cleanupLive_ = false;
      cleanup_.Remove(env_);
    }
  }

  // JS thread, from the TSFN: hand what the IO thread queued to JS.
  void Deliver(Napi::Env env, Napi::Function callback) {
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
      if (events[i].kind == Event::kDisconnected) lost = true;
      arr.Set(static_cast<uint32_t>(i), ToJs(env, events[i]));
    }
    if (lost) Close();  // the IO thread has stopped; release the TSFN and the cleanup hook
    callback.Call({arr});  // an exception thrown here is reported as uncaught by Node
  }

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
    Finalize();
    CsError(env, e, call).ThrowAsJavaScriptException();
    return false;
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t n = write(wakeFd_, &one, sizeof one);
    (void)n;  // eventfd write cannot fail short of overflow; the flags under mu_ carry the meaning
  }

  // Leaves and disconnects; no JS. On the IO thread once it runs, else on the JS thread (Open
  // failing). May block while corosync is stopped, which is why it is not done on the JS thread.
  void Finalize() {
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

  // Publishes what the callbacks collected and wakes JS (unless close() released the TSFN).
  void Publish() {
    if (pending_.empty()) return;
    std::lock_guard<std::mutex> lk(mu_);
    for (Event& ev : pending_) ready_.push_back(std::move(ev));
    pending_.clear();
    if (!tsfnReleased_) tsfn_.NonBlockingCall();
  }

  // IO thread: poll, dispatch (callbacks queue into pending_), send, publish; on stop or a lost
  // connection, leave and disconnect. cpg_dispatch keeps ~1 MiB on this thread's stack (glibc
  // gives threads 8 MiB by default).
  void IoLoop() {
    bool lost = false;
    std::string why;
    for (;;) {
      bool sendsWaiting;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (stopping_) break;
        sendsWaiting = !outq_.empty();
      }
      pollfd fds[3] = {{wakeFd_, POLLIN, 0}, {cpgFd_, POLLIN, 0}, {quorumFd_, POLLIN, 0}};
      // While flow control holds a message back, retry every 10 ms; otherwise sleep until woken.
      int n = poll(fds, 3, sendsWaiting && retryPending_ ? 10 : -1);
      if (n < 0 && errno != EINTR) { lost = true; why = "poll failed"; break; }
      if (fds[0].revents & POLLIN) {
        uint64_t v;
        ssize_t r = read(wakeFd_, &v, sizeof v);
        (void)r;
      }
      short bad = POLLHUP | POLLERR | POLLNVAL;
      if (((fds[1].revents | fds[2].revents) & bad) && !((fds[1].revents | fds[2].revents) & POLLIN)) {
        lost = true;
        why = "IPC socket closed";
        break;
      }
      // Quorum first: when both are ready, a lost quorum reaches JS before the view change it
      // belongs to, so the view is never acted on with a stale "quorate".
      cs_error_t e2 = (fds[2].revents & POLLIN) ? Call([this]() { return quorum_dispatch(quorum_, CS_DISPATCH_ALL); }) : CS_OK;
      cs_error_t e1 = (fds[1].revents & POLLIN) ? Call([this]() { return cpg_dispatch(cpg_, CS_DISPATCH_ALL); }) : CS_OK;
      if ((e1 != CS_OK && e1 != CS_ERR_TRY_AGAIN) || (e2 != CS_OK && e2 != CS_ERR_TRY_AGAIN)) {
        lost = true;
        why = CsName(e1 != CS_OK ? e1 : e2);
        break;
      }
      if (!SendQueued(&why)) { lost = true; break; }
      Publish();
    }
    if (lost) {
      Event ev(Event::kDisconnected);
      ev.detail = "lost the connection to corosync (" + why + ")";
      pending_.push_back(std::move(ev));
      Publish();
    }
    Finalize();
    std::lock_guard<std::mutex> lk(mu_);
    done_ = true;
    doneCv_.notify_all();
  }

  // Sends what is queued, in order; stops at flow control (CS_ERR_TRY_AGAIN) and retries later.
  bool SendQueued(std::string* why) {
    retryPending_ = false;
    for (;;) {
      Outgoing msg;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (outq_.empty() || stopping_) return true;
        msg = std::move(outq_.front());
        outq_.pop_front();
        inFlightAt_ = msg.at;
      }
      iovec iov{msg.data.data(), msg.data.size()};
      cs_error_t e = Call([&]() { return cpg_mcast_joined(cpg_, CPG_TYPE_AGREED, &iov, 1); });
      std::lock_guard<std::mutex> lk(mu_);
      inFlightAt_ = 0;
      if (e == CS_OK) continue;
      if (e == CS_ERR_TRY_AGAIN) {
        outq_.push_front(std::move(msg));
        retryPending_ = true;
        return true;
      }
      *why = std::string("cpg_mcast_joined: ") + CsName(e);
      return false;
    }
  }

  // Runs one corosync call with callSince_ set, so JS can see a call that does not return.
  template <typename F>
  cs_error_t Call(F f) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      callSince_ = NowMs();
    }
    cs_error_t e = f();
    std::lock_guard<std::mutex> lk(mu_);
    callSince_ = 0;
    return e;
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
  int cpgFd_ = -1, quorumFd_ = -1, wakeFd_ = -1;
  uint32_t localNodeId_ = 0, quorumType_ = 0;
  bool quorate_ = false;
  std::string group_;
  std::vector<Event> pending_;  // filled by callbacks during dispatch: IO thread only
  bool retryPending_ = false;   // IO thread only

  Napi::Env env_ = nullptr;
  Tsfn tsfn_;
  bool tsfnLive_ = false;  // JS thread only
  Napi::Env::CleanupHook<void (*)(Connection*), Connection> cleanup_;
  bool cleanupLive_ = false;
  bool closed_ = false;

  std::thread thread_;
  std::mutex mu_;  // guards everything below, shared by the JS and IO threads
  std::condition_variable doneCv_;
  struct Outgoing {
    int64_t at = 0;  // when JS queued it (steady clock, ms)
    std::vector<uint8_t> data;
  };
  std::deque<Outgoing> outq_;
  int64_t inFlightAt_ = 0;  // queue time of the message being sent, 0 when none
  std::vector<Event> ready_;
  int64_t callSince_ = 0;
  bool stopping_ = false, done_ = false, tsfnReleased_ = false;
};

void CallJs(Napi::Env env, Napi::Function callback, std::shared_ptr<Connection>* context, void*) {
  // env is null when the environment is being torn down with a call still queued.
  if (env == nullptr || context == nullptr || *context == nullptr) return;
  (*context)->Deliver(env, callback);
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
