// What the corosync binding's files share: the Connection (one CPG group plus quorum tracking over
// one connection to the local corosync) and the Event its callbacks queue. Files: corosync.cc (the
// JS functions), corosync_connection.cc (join, the IO thread, sends, leave), corosync_events.cc
// (corosync callbacks -> queued events -> JS after dispatch returns), corosync_dl.cc (the libraries,
// loaded at run time). Methods say which thread (JS or IO) they run on; only the IO thread blocks,
// on corosync IPC.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <napi.h>

#include "corosync_dl.h"

namespace vipmta::corosync {

// A corosync error as a JS error: code ERR_COROSYNC_NOT_RUNNING when the library could not reach
// the daemon (CS_ERR_LIBRARY: its IPC socket is absent in this network namespace), else ERR_COROSYNC
// with the cs_error_t name; `csError` carries the number, `call` the library function. JS thread.
Napi::Error CsError(Napi::Env env, cs_error_t e, const char* call);
// The cs_error_t's symbolic name ("CS_ERR_TRY_AGAIN"); any thread.
const char* CsName(cs_error_t e);

// Upper bound of messages queued for sending: corosync stopped (SIGSTOP) or wedged must not grow
// memory without end. Announces are small and rare; 4096 is minutes of normal traffic.
constexpr size_t kMaxQueuedSends = 4096;

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One event, copied out of a corosync callback; turned into a JS object after dispatch returns.
struct Event {
  // kOpened / kOpenFailed: the join's outcome, always the first event (kOpenFailed also the last).
  enum Kind { kOpened, kOpenFailed, kMessage, kConfchg, kTotem, kQuorum, kDisconnected } kind;
  uint32_t nodeid = 0;                             // kOpened: the local nodeid
  uint32_t pid = 0;
  uint8_t* data = nullptr;  // kMessage: malloc'd, ownership passes to the JS Buffer
  size_t len = 0;
  std::vector<cpg_address> members, left, joined;  // kConfchg
  std::vector<uint32_t> nodes;                     // kTotem, kQuorum
  uint64_t seq = 0;                                // ring sequence (kTotem, kQuorum)
  bool quorate = false;                            // kQuorum, kOpened
  uint32_t quorumType = 0;                         // kOpened
  cs_error_t csError = CS_OK;                      // kOpenFailed
  const char* call = "";                           // kOpenFailed: the corosync function that failed
  std::string detail;                              // kDisconnected

  Event(Kind k) : kind(k) {}
  Event(Event&& o) noexcept { *this = std::move(o); }
  Event& operator=(Event&& o) noexcept {
    kind = o.kind; nodeid = o.nodeid; pid = o.pid; data = o.data; len = o.len;
    members = std::move(o.members); left = std::move(o.left); joined = std::move(o.joined);
    nodes = std::move(o.nodes); seq = o.seq; quorate = o.quorate; quorumType = o.quorumType;
    csError = o.csError; call = o.call; detail = std::move(o.detail);
    o.data = nullptr;
    return *this;
  }
  ~Event() { free(data); }
};

class Connection;
// The TSFN's call: JS thread, hands the ready events to Connection::Deliver (corosync_events.cc).
void CallJs(Napi::Env env, Napi::Function callback, std::shared_ptr<Connection>* context, void* data);
using Tsfn = Napi::TypedThreadSafeFunction<std::shared_ptr<Connection>, void, CallJs>;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  ~Connection();

  // ---- corosync_connection.cc ----

  // JS thread. Starts the IO thread, which connects, joins `group` and starts quorum tracking, then
  // reports kOpened or kOpenFailed as the first event. Never waits on corosync: a corosync that is
  // stopped (SIGSTOP) accepts the connection and answers nothing, and libqb's handshake then waits
  // for as long as it stays stopped. Throws (pending) only when the IO thread cannot be set up.
  bool Open(Napi::Env env, const std::string& group, Napi::Function onEvents);
  // JS thread: queues one message for agreed-order multicast (CPG_TYPE_AGREED); false when the
  // queue is full (corosync is not taking messages).
  bool Queue(const uint8_t* data, size_t len);
  // JS thread: messages waiting, and how long corosync has kept us waiting: the age of the oldest
  // unsent message or of a corosync call that has not returned, whichever is older (0 when idle).
  void SendState(size_t* queued, int64_t* stalledMs);
  // JS thread. Idempotent and never blocks for long: asks the IO thread to leave the group and
  // disconnect, waits up to 200 ms for it, and otherwise lets it finish on its own. The TSFN is
  // released here, so no event reaches JS after close().
  void Close();

  // ---- corosync_events.cc ----

  // JS thread, from the TSFN: hand what the IO thread queued to JS.
  void Deliver(Napi::Env env, Napi::Function callback);

  bool closed() const { return closed_; }
  Tsfn& tsfn() { return tsfn_; }

 private:
  // ---- corosync_connection.cc ----
  static void CleanupHook(Connection* c);
  // IO thread: the join's IPC calls; on failure *call names the one that failed.
  cs_error_t Connect(const char** call);
  void Wake();
  void Finalize();
  void IoLoop();
  bool SendQueued(std::string* why);
  template <typename F>
  cs_error_t Call(F f);

  // ---- corosync_events.cc ----
  // IO thread: moves pending_ to ready_ and wakes JS (unless close() released the TSFN).
  void Publish();
  // The callbacks: inside cpg_dispatch / quorum_dispatch on the IO thread, C++ only, no JS.
  static Connection* FromCpg(cpg_handle_t h);
  static void OnDeliver(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len);
  static void OnConfchg(cpg_handle_t h, const cpg_name*, const cpg_address* m, size_t nm, const cpg_address* l,
                        size_t nl, const cpg_address* j, size_t nj);
  static void OnTotem(cpg_handle_t h, cpg_ring_id ring, uint32_t n, const uint32_t* members);
  static void OnQuorum(quorum_handle_t h, uint32_t quorate, uint64_t seq, uint32_t n, uint32_t* members);
  // JS thread: one event as the object src/native/corosync.ts expects.
  Napi::Object ToJs(Napi::Env env, Event& ev);

  cpg_handle_t cpg_ = 0;
  quorum_handle_t quorum_ = 0;
  bool cpgOpen_ = false, quorumOpen_ = false, joined_ = false;  // IO thread only
  int cpgFd_ = -1, quorumFd_ = -1, wakeFd_ = -1;
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

}  // namespace vipmta::corosync
