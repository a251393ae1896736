// The corosync connection's life: a native IO thread per connection that joins, polls, dispatches,
// sends the queued messages in order and finally leaves and disconnects. Every libcpg/libquorum call
// runs on that thread because they are IPC round trips that block indefinitely while corosync is
// stopped (SIGSTOP, measured: the join's handshake, sends and cpg_leave hang); the JS thread only
// queues sends and flips flags under mu_, never waiting on it.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "corosync.h"
#include "errors.h"

namespace vipmta::corosync {

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

Connection::~Connection() {
  // The IO thread holds a shared_ptr to us, so this runs either on it (it dropped the last
  // reference on its way out) or after it finished: never join ourselves.
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) thread_.detach();
    else thread_.join();
  }
  // close(2) of an eventfd has no failure to act on (EBADF would be our bug), and a destructor has
  // nobody to tell.
  if (wakeFd_ >= 0) close(wakeFd_);
}

bool Connection::Open(Napi::Env env, const std::string& group, Napi::Function onEvents) {
  group_ = group;
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) {
    ThrowErrno(env, errno, "eventfd");
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

  // Every corosync call (join, dispatch, send, leave, finalize) runs on the IO thread: libcpg is
  // then used from one thread only, and an IPC call that blocks never blocks JavaScript.
  std::shared_ptr<Connection> self = shared_from_this();
  thread_ = std::thread([self]() { self->IoLoop(); });
  return true;
}

cs_error_t Connection::Connect(const char** call) {
  const Api& lib = Lib();
  // CPG: agreed-order messages and group membership (cpg_overview(7)). The callbacks live in
  // corosync_events.cc; `this` is their context.
  cpg_model_v1_data_t model{};
  model.model = CPG_MODEL_V1;
  model.cpg_deliver_fn = OnDeliver;
  model.cpg_confchg_fn = OnConfchg;
  model.cpg_totem_confchg_fn = OnTotem;
  model.flags = kDeliverInitialTotemConf;
  cs_error_t e;
  if ((e = Call([&]() { return lib.cpg_model_initialize(&cpg_, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), this); })) != CS_OK) {
    *call = "cpg_model_initialize";
    return e;
  }
  cpgOpen_ = true;

  // Quorum (quorum_overview(3)): only a quorate partition may own addresses.
  quorum_callbacks_t qcb{};
  qcb.quorum_notify_fn = OnQuorum;
  uint32_t quorumType = 0;
  if ((e = Call([&]() { return lib.quorum_initialize(&quorum_, &qcb, &quorumType); })) != CS_OK) {
    *call = "quorum_initialize";
    return e;
  }
  quorumOpen_ = true;
  if ((e = lib.quorum_context_set(quorum_, this)) != CS_OK) { *call = "quorum_context_set"; return e; }

  Event opened(Event::kOpened);
  opened.quorumType = quorumType;
  unsigned int nodeid = 0;
  if ((e = Call([&]() { return lib.cpg_local_get(cpg_, &nodeid); })) != CS_OK) { *call = "cpg_local_get"; return e; }
  opened.nodeid = nodeid;
  int q = 0;
  if ((e = Call([&]() { return lib.quorum_getquorate(quorum_, &q); })) != CS_OK) { *call = "quorum_getquorate"; return e; }
  opened.quorate = q != 0;

  cpg_name name{};
  name.length = static_cast<uint32_t>(group_.size());
  memcpy(name.value, group_.data(), group_.size());
  if ((e = Call([&]() { return lib.cpg_join(cpg_, &name); })) != CS_OK) { *call = "cpg_join"; return e; }
  joined_ = true;
  // CS_TRACK_CURRENT: one notification with the present state at once, then every change.
  if ((e = Call([&]() { return lib.quorum_trackstart(quorum_, kTrackCurrent | kTrackChanges); })) != CS_OK) {
    *call = "quorum_trackstart";
    return e;
  }
  if ((e = lib.cpg_fd_get(cpg_, &cpgFd_)) != CS_OK) { *call = "cpg_fd_get"; return e; }
  if ((e = lib.quorum_fd_get(quorum_, &quorumFd_)) != CS_OK) { *call = "quorum_fd_get"; return e; }
  // First in pending_: no dispatch has run yet, so no callback has queued anything before it.
  pending_.push_back(std::move(opened));
  return CS_OK;
}

bool Connection::Queue(const uint8_t* data, size_t len) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (outq_.size() >= kMaxQueuedSends) return false;
    outq_.push_back(Outgoing{NowMs(), std::vector<uint8_t>(data, data + len)});
  }
  Wake();
  return true;
}

// A stopped corosync shows here long before anything else (a full ring gives CS_ERR_TRY_AGAIN,
// some calls simply block: both count).
void Connection::SendState(size_t* queued, int64_t* stalledMs) {
  std::lock_guard<std::mutex> lk(mu_);
  *queued = outq_.size();
  int64_t since = callSince_;
  if (!outq_.empty() && (since == 0 || outq_.front().at < since)) since = outq_.front().at;
  if (inFlightAt_ != 0 && (since == 0 || inFlightAt_ < since)) since = inFlightAt_;
  *stalledMs = since == 0 ? 0 : NowMs() - since;
}

// The IO thread keeps the Connection alive through its shared_ptr when we stop waiting for it.
void Connection::Close() {
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

void Connection::CleanupHook(Connection* c) {
  // node-addon-api frees the hook's data after this returns: removing it from inside would free
  // it twice, so mark it gone instead.
  c->cleanupLive_ = false;
  c->Close();
}

// JS thread (Queue, Close): wakes the IO thread's poll. The flags under mu_ carry the meaning.
void Connection::Wake() {
  uint64_t one = 1;
  if (write(wakeFd_, &one, sizeof one) == static_cast<ssize_t>(sizeof one)) return;
  // EAGAIN: the counter is at its maximum, so the fd is readable and the IO thread wakes anyway.
  if (errno == EAGAIN) return;
  // Nothing else can fail on our non-blocking eventfd short of it not being one (EBADF, EINVAL: a
  // use after close or memory corruption). The IO thread would then never see sends or close(),
  // with JavaScript none the wiser; stop loudly instead, as for out of memory.
  fprintf(stderr, "vipmta: waking the corosync IO thread: write(eventfd) failed: %s\n", strerror(errno));
  abort();
}

// Leaves and disconnects; no JS. IO thread. May block while corosync is stopped, which is why it is
// not done on the JS thread. Results are not reported: after close() nobody listens, after a lost
// connection the loss was already reported, and when the join fails its own error is the one sent.
void Connection::Finalize() {
  // An explicit leave first: cpg_finalize alone looks to the others like a crash (reason
  // PROCDOWN); after cpg_leave they see reason LEAVE, which tells a planned exit from a dead process.
  const Api& lib = Lib();
  if (cpgOpen_ && joined_) {
    cpg_name name{};
    name.length = static_cast<uint32_t>(group_.size());
    memcpy(name.value, group_.data(), group_.size());
    lib.cpg_leave(cpg_, &name);  // fails harmlessly when corosync is already gone
  }
  if (cpgOpen_) lib.cpg_finalize(cpg_);
  if (quorumOpen_) lib.quorum_finalize(quorum_);
  cpgOpen_ = quorumOpen_ = joined_ = false;
}

// IO thread: runs one corosync call with callSince_ set, so JS can see a call that does not return.
template <typename F>
cs_error_t Connection::Call(F f) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    callSince_ = NowMs();
  }
  cs_error_t e = f();
  std::lock_guard<std::mutex> lk(mu_);
  callSince_ = 0;
  return e;
}

// IO thread: join (Connect; its outcome is the first event JS gets), then poll, dispatch (callbacks
// queue into pending_), send, publish; on a failed join, stop or a lost connection, leave and
// disconnect. A close() during a join that corosync does not answer takes effect when it answers. cpg_dispatch keeps ~1 MiB on this thread's stack (glibc
// gives threads 8 MiB by default).
void Connection::IoLoop() {
  const Api& lib = Lib();
  const char* call = "";
  cs_error_t opened = Connect(&call);
  if (opened != CS_OK) {
    Event ev(Event::kOpenFailed);
    ev.csError = opened;
    ev.call = call;
    pending_.push_back(std::move(ev));
  }
  Publish();
  bool lost = false;
  std::string why;
  for (;;) {
    if (opened != CS_OK) break;
    bool sendsWaiting;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_) break;
      sendsWaiting = !outq_.empty();
    }
    pollfd fds[3] = {{wakeFd_, POLLIN, 0}, {cpgFd_, POLLIN, 0}, {quorumFd_, POLLIN, 0}};
    // While flow control holds a message back, retry every 10 ms; otherwise sleep until woken.
    int n = poll(fds, 3, sendsWaiting && retryPending_ ? 10 : -1);
    if (n < 0 && errno != EINTR) {
      lost = true;
      why = std::string("poll failed: ") + strerror(errno);
      break;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      // EAGAIN: nothing to drain (the counter was already read). Any other failure would leave
      // the fd readable and this loop spinning: report it as a lost connection instead.
      if (read(wakeFd_, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR) {
        lost = true;
        why = std::string("read(eventfd) failed: ") + strerror(errno);
        break;
      }
    }
    short bad = POLLHUP | POLLERR | POLLNVAL;
    if (((fds[1].revents | fds[2].revents) & bad) && !((fds[1].revents | fds[2].revents) & POLLIN)) {
      lost = true;
      why = "IPC socket closed";
      break;
    }
    // Quorum first: when both are ready, a lost quorum reaches JS before the view change it
    // belongs to, so the view is never acted on with a stale "quorate".
    cs_error_t e2 = (fds[2].revents & POLLIN) ? Call([&]() { return lib.quorum_dispatch(quorum_, CS_DISPATCH_ALL); }) : CS_OK;
    cs_error_t e1 = (fds[1].revents & POLLIN) ? Call([&]() { return lib.cpg_dispatch(cpg_, CS_DISPATCH_ALL); }) : CS_OK;
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

// IO thread: sends what is queued, in order; stops at flow control (CS_ERR_TRY_AGAIN) and retries
// later. False (with *why) when corosync refused a message for good.
bool Connection::SendQueued(std::string* why) {
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
    cs_error_t e = Call([&]() { return Lib().cpg_mcast_joined(cpg_, CPG_TYPE_AGREED, &iov, 1); });
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

}  // namespace vipmta::corosync
