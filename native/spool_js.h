// What the spool's Node-API bindings share across their files (spool.cc: messages, done-marks,
// reads; spool_events_js.cc: the event journal): the per-thread sink that settles promises, and
// the helpers that unwrap handles and build errors. JS threads only (the commit thread calls
// EnvSink::Deliver, which takes one mutex and never blocks for long).
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <napi.h>

#include "spool_core.h"

namespace vipmta::spool_js {

using spool::Completion;
using spool::Core;

enum class Kind { kCommit, kVoid, kCount };

// Per JS thread (per Node-API env): the pending promises of this thread and the thread-safe
// function the commit thread uses to wake it. `queue`/`alive`/`scheduled` are shared with the
// commit thread under mu; everything else is touched on the JS thread only.
class EnvSink : public spool::Notifier, public std::enable_shared_from_this<EnvSink> {
 public:
  std::mutex mu;
  bool alive = true;
  bool scheduled = false;
  std::vector<Completion> queue;
  napi_threadsafe_function tsfn = nullptr;

  uint64_t next_token = 1;
  struct Pending {
    napi_deferred deferred;
    Kind kind;
  };
  std::unordered_map<uint64_t, Pending> pending;
  bool refd = false;
  std::vector<std::weak_ptr<Core>> opened;  // spools this thread opened: closed if it goes away

  // Commit thread. Must not block: one mutex, one non-blocking queue push per batch.
  void Deliver(std::vector<Completion>&& done) override {
    std::lock_guard<std::mutex> g(mu);
    if (!alive) return;  // the thread is gone (worker terminated): nobody to tell
    for (auto& c : done) queue.push_back(std::move(c));
    if (!scheduled) {
      scheduled = true;
      napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
    }
  }

  uint64_t Add(napi_deferred d, Kind k, napi_env env) {
    uint64_t t = next_token++;
    pending.emplace(t, Pending{d, k});
    if (!refd) {
      napi_ref_threadsafe_function(env, tsfn);  // keep the loop alive while promises are pending
      refd = true;
    }
    return t;
  }
  void MaybeUnref(napi_env env) {
    if (pending.empty() && refd) {
      napi_unref_threadsafe_function(env, tsfn);
      refd = false;
    }
  }
};

inline EnvSink* SinkOf(const Napi::CallbackInfo& info) { return static_cast<EnvSink*>(info.Data()); }
Napi::Error CompletionError(Napi::Env env, const Completion& c);
// The spool handle in argument i, or null with a TypeError pending.
spool::Core* UnwrapCore(const Napi::CallbackInfo& info, size_t i);
Napi::Error ClosedError(Napi::Env env, spool::Core* c);

// One event payload (a Buffer, at most 1 MiB) into *out, stamped with the wall clock now; and an
// array [{ id?, data }] (undefined or null: none). False with a pending exception.
bool TakeEvent(Napi::Env env, Napi::Value data, std::string id, std::vector<spool::EventIn>* out, const char* fn);
bool TakeEvents(Napi::Env env, Napi::Value v, std::vector<spool::EventIn>* out, const char* fn);

// Registers spoolAppendEvents, spoolEventsTrim, spoolEventsStats, spoolEventsHead, spoolCrc32c.
void InitSpoolEvents(Napi::Env env, Napi::Object exports, EnvSink* s);

}  // namespace vipmta::spool_js
