// Node-API bindings of the spool (engine: spool_core.h). Every function runs on the JS thread
// that calls it (main thread or a listener worker) and is short: no file I/O except read(),
// bodyLocation() and open/recover, which the caller chooses to block on. Commits, done-marks and
// updates return Promises settled on the caller's own thread via a per-thread thread-safe function.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cmath>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <napi.h>

#include "errors.h"
#include "spool_core.h"
#include "spool_format.h"
#include "spool_crc.h"
#include "spool_file.h"
#include "spool_js.h"

namespace vipmta {
namespace {

using spool::Completion;
using spool::Core;
using spool::Message;

int64_t MonoNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

using spool_js::EnvSink;
using spool_js::Kind;
using spool_js::SinkOf;
using spool_js::TakeEvent;
using spool_js::TakeEvents;

}  // namespace

Napi::Error spool_js::CompletionError(Napi::Env env, const Completion& c) {
  return ErrnoError(env, c.err, c.syscall ? c.syscall : "spool", c.detail, c.code);
}

namespace {
using spool_js::CompletionError;

// JS thread: settles the promises whose work the commit thread finished.
void CallJs(napi_env raw, napi_value, void* context, void*) {
  if (raw == nullptr) return;  // the env is being torn down
  EnvSink* s = static_cast<EnvSink*>(context);
  std::vector<Completion> q;
  {
    std::lock_guard<std::mutex> g(s->mu);
    q.swap(s->queue);
    s->scheduled = false;
  }
  Napi::Env env(raw);
  Napi::HandleScope scope(env);
  for (auto& c : q) {
    auto it = s->pending.find(c.token);
    if (it == s->pending.end()) continue;
    EnvSink::Pending p = it->second;
    s->pending.erase(it);
    if (c.err != 0) {
      napi_reject_deferred(raw, p.deferred, CompletionError(env, c).Value());
    } else if (p.kind == Kind::kCount) {
      napi_resolve_deferred(raw, p.deferred, Napi::Number::New(env, static_cast<double>(c.size)));
    } else if (p.kind == Kind::kCommit) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", Napi::String::New(env, c.id));
      o.Set("size", Napi::Number::New(env, static_cast<double>(c.size)));
      napi_resolve_deferred(raw, p.deferred, o);
    } else {
      napi_resolve_deferred(raw, p.deferred, env.Undefined());
    }
  }
  s->MaybeUnref(raw);
}

// The thread-safe function is gone; it held a reference to the sink (finalize_data) so CallJs
// and this finalizer never see a freed sink, whatever order the env tears things down in.
void TsfnFinalize(napi_env, void* data, void*) {
  auto* ref = static_cast<std::shared_ptr<EnvSink>*>(data);
  {
    std::lock_guard<std::mutex> g((*ref)->mu);
    (*ref)->alive = false;
  }
  delete ref;
}

struct EnvHolder {
  std::shared_ptr<EnvSink> sink;
};

// The env is going away (worker terminated, or process exit): stop the commit thread from
// calling into it, and close the spools this thread opened (drains and joins their threads).
void EnvCleanup(void* arg) {
  auto* h = static_cast<EnvHolder*>(arg);
  {
    std::lock_guard<std::mutex> g(h->sink->mu);
    h->sink->alive = false;
  }
  napi_release_threadsafe_function(h->sink->tsfn, napi_tsfn_abort);
  for (auto& w : h->sink->opened)
    if (auto c = w.lock()) c->CloseAndWait();
  delete h;  // the commit thread may still hold the sink; it checks `alive`
}


struct CoreRef {
  std::shared_ptr<Core> core;
};
struct MsgRef {
  std::unique_ptr<Message> msg;
};

Napi::Value WrapCore(Napi::Env env, std::shared_ptr<Core> c) {
  return Napi::External<CoreRef>::New(env, new CoreRef{std::move(c)},
                                      [](Napi::Env, CoreRef* r) { delete r; });
}

}  // namespace

Core* spool_js::UnwrapCore(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal()) {
    ThrowType(info.Env(), "expected a spool handle");
    return nullptr;
  }
  return info[i].As<Napi::External<CoreRef>>().Data()->core.get();
}

Napi::Error spool_js::ClosedError(Napi::Env env, Core* c) {
  return CodeError(env, "ERR_SPOOL_CLOSED", "the spool " + c->Directory() + " is closed");
}

namespace {
using spool_js::ClosedError;
using spool_js::UnwrapCore;

Napi::Value Rejected(Napi::Env env, Napi::Error e) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(e.Value());
  return d.Promise();
}


// spoolOpen({ directory, nodeId, sync, commitDelayMs, segmentSize, copyForwardAfterMs,
//            preallocate, journalLimit }) -> { handle, directory, nodeId, events[] }
// Blocks on recovery (reads every segment). Main thread.
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "spoolOpen: expected an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  spool::Options opt;
  Napi::Value dir = o.Get("directory"), node = o.Get("nodeId");
  if (!dir.IsString() || !node.IsString()) return ThrowType(env, "spoolOpen: directory and nodeId must be strings");
  opt.directory = dir.As<Napi::String>().Utf8Value();
  opt.node_id = spool::SanitizeNodeId(node.As<Napi::String>().Utf8Value());
  Napi::Value v = o.Get("sync");
  if (v.IsString()) opt.sync = v.As<Napi::String>().Utf8Value() != "none";
  v = o.Get("commitDelayMs");
  if (v.IsNumber()) opt.commit_delay_ms = v.As<Napi::Number>().Int64Value();
  v = o.Get("segmentSize");
  if (v.IsNumber()) opt.segment_size = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  v = o.Get("copyForwardAfterMs");
  if (v.IsNumber()) opt.copy_forward_ms = v.As<Napi::Number>().Int64Value();
  v = o.Get("journalLimit");
  if (v.IsNumber()) opt.journal_limit = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  v = o.Get("eventSegmentSize");
  if (v.IsNumber()) opt.events.segment_size = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  v = o.Get("eventMaxSize");
  if (v.IsNumber()) opt.events.max_size = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  v = o.Get("eventRetention");
  if (v.IsNumber()) opt.events.retention = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  v = o.Get("eventAlarmPercent");
  if (v.IsNumber()) opt.events.alarm_percent = static_cast<uint32_t>(v.As<Napi::Number>().Int64Value());
  v = o.Get("eventAtCap");
  if (v.IsString() && v.As<Napi::String>().Utf8Value() == "drop_oldest") opt.events.at_cap = spool::AtCap::kDropOldest;
  v = o.Get("eventSyncOverlap");
  if (v.IsBoolean()) opt.events.overlap_sync = v.As<Napi::Boolean>().Value();
  v = o.Get("preallocate");
  if (v.IsString()) {
    std::string p = v.As<Napi::String>().Utf8Value();
    opt.prealloc = p == "none" ? spool::Prealloc::kNone
                   : p == "zero" ? spool::Prealloc::kZero : spool::Prealloc::kFallocate;
  }
  spool::Error err;
  std::vector<spool::RecoveryEvent> events;
  std::shared_ptr<Core> c = Core::Open(opt, &err, &events);
  if (!c) {
    ErrnoError(env, err.err, err.syscall, err.detail, err.code).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  SinkOf(info)->opened.push_back(c);
  Napi::Object r = Napi::Object::New(env);
  r.Set("directory", Napi::String::New(env, c->Directory()));
  r.Set("nodeId", Napi::String::New(env, opt.node_id));
  Napi::Array ev = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("kind", events[i].kind);
    x.Set("file", events[i].file);
    x.Set("offset", Napi::Number::New(env, static_cast<double>(events[i].offset)));
    x.Set("length", Napi::Number::New(env, static_cast<double>(events[i].length)));
    x.Set("reason", events[i].reason);
    if (!events[i].saved_as.empty()) x.Set("savedAs", events[i].saved_as);
    if (!events[i].id.empty()) x.Set("id", events[i].id);
    ev[i] = x;
  }
  r.Set("events", ev);
  r.Set("handle", WrapCore(env, std::move(c)));
  return r;
}

// spoolAttach(directory) -> handle. Any thread; the spool must be open in this process.
Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "spoolAttach: expected a directory");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::shared_ptr<Core> c = Core::Find(dir);
  if (!c || c->Closing()) return ThrowCode(env, "ERR_SPOOL_CLOSED", "no open spool at " + dir + " in this process");
  return WrapCore(env, std::move(c));
}

// spoolBegin(sizeHint?) -> message handle. Hot path: one allocation (the message buffer).
Napi::Value Begin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t hint = info.Length() > 0 && info[0].IsNumber() ? static_cast<size_t>(info[0].As<Napi::Number>().Int64Value()) : 0;
  if (hint > (256u << 20)) hint = 256u << 20;
  auto m = std::make_unique<Message>();
  if (!m->Init(hint)) return ThrowErrno(env, ENOMEM, "malloc");
  return Napi::External<MsgRef>::New(env, new MsgRef{std::move(m)}, [](Napi::Env, MsgRef* r) { delete r; });
}

Message* UnwrapMsg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal()) {
    ThrowType(info.Env(), "expected a message handle");
    return nullptr;
  }
  Message* m = info[i].As<Napi::External<MsgRef>>().Data()->msg.get();
  if (m == nullptr) ThrowCode(info.Env(), "ERR_INVALID_STATE", "the message was already committed or aborted");
  return m;
}

// spoolAppend(message, chunk). Hot path, once per DATA chunk: converts into wire form in place;
// no allocation unless the message buffer must grow; the chunk is not retained.
Napi::Value Append(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Message* m = UnwrapMsg(info, 0);
  if (m == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBuffer()) return ThrowType(env, "spoolAppend: chunk must be a Buffer");
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  if (!m->Append(b.Data(), b.Length())) return ThrowErrno(env, ENOMEM, "realloc");
  return env.Undefined();
}

// spoolAbort(message): frees the message at once; nothing of it was or will be written.
Napi::Value Abort(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsExternal()) info[0].As<Napi::External<MsgRef>>().Data()->msg.reset();
  return info.Env().Undefined();
}

// spoolCommit(handle, message, envelope, event?) -> Promise<{ id, size }>, settled after the record is
// synced. The envelope is copied; size is the body's size in wire form.
// Hot path: CRC32C over the message on this thread (spreads CRC work over the workers), then a
// queue push. The message buffer now belongs to the commit thread.
Napi::Value Commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvSink* s = SinkOf(info);
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  Message* m = UnwrapMsg(info, 1);
  if (m == nullptr) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsBuffer()) return ThrowType(env, "spoolCommit: envelope must be a Buffer");
  auto eb = info[2].As<Napi::Buffer<uint8_t>>();
  if (eb.Length() > spool::kMaxEnvelope) return ThrowCode(env, "ERR_OUT_OF_RANGE", "envelope larger than 16 MiB");
  std::vector<spool::EventIn> events;  // empty unless an event is given: no allocation
  if (info.Length() > 3 && !info[3].IsUndefined() && !TakeEvent(env, info[3], std::string(), &events, "spoolCommit"))
    return env.Undefined();
  std::unique_ptr<Message> own = std::move(info[1].As<Napi::External<MsgRef>>().Data()->msg);
  if (!own->Finish() || !own->AddEnvelope(eb.Data(), eb.Length()))
    return Rejected(env, ErrnoError(env, ENOMEM, "realloc"));
  own->payload_crc = spool::Crc32c(0, own->buf + spool::kHeadroom, own->len - spool::kHeadroom);
  own->begin_ns = MonoNs();
  napi_deferred raw_d;
  napi_value promise;
  napi_create_promise(env, &raw_d, &promise);
  uint64_t t = s->Add(raw_d, Kind::kCommit, env);
  if (!c->SubmitMessage(std::move(own), s->shared_from_this(), t, std::move(events))) {
    s->pending.erase(t);
    s->MaybeUnref(env);
    napi_reject_deferred(env, raw_d, ClosedError(env, c).Value());
  }
  return Napi::Value(env, promise);
}

// spoolMarkDone(handle, ids[]) -> Promise<void>, settled after the done-marks are synced.
Napi::Value MarkDone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvSink* s = SinkOf(info);
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsArray()) return ThrowType(env, "spoolMarkDone: ids must be an array");
  Napi::Array a = info[1].As<Napi::Array>();
  std::vector<std::string> ids;
  ids.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a[i];
    if (!v.IsString()) return ThrowType(env, "spoolMarkDone: ids must be strings");
    ids.push_back(v.As<Napi::String>().Utf8Value());
  }
  std::vector<spool::EventIn> events;
  if (info.Length() > 2 && !TakeEvents(env, info[2], &events, "spoolMarkDone")) return env.Undefined();
  napi_deferred d;
  napi_value promise;
  napi_create_promise(env, &d, &promise);
  uint64_t t = s->Add(d, Kind::kVoid, env);
  if (!c->SubmitDone(std::move(ids), s->shared_from_this(), t, std::move(events))) {
    s->pending.erase(t);
    s->MaybeUnref(env);
    napi_reject_deferred(env, d, ClosedError(env, c).Value());
  }
  return Napi::Value(env, promise);
}

// spoolUpdate(handle, id, state) -> Promise<void>; rejects ENOENT for an unknown or done id.
Napi::Value Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvSink* s = SinkOf(info);
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsString() || !info[2].IsBuffer())
    return ThrowType(env, "spoolUpdate: expected (id: string, state: Buffer)");
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  if (b.Length() > spool::kMaxState) return ThrowCode(env, "ERR_OUT_OF_RANGE", "state larger than 1 MiB");
  std::vector<spool::EventIn> events;  // an event without an id gets the updated id
  if (info.Length() > 3 && !info[3].IsUndefined() && !TakeEvent(env, info[3], std::string(), &events, "spoolUpdate"))
    return env.Undefined();
  napi_deferred d;
  napi_value promise;
  napi_create_promise(env, &d, &promise);
  uint64_t t = s->Add(d, Kind::kVoid, env);
  std::string state(reinterpret_cast<const char*>(b.Data()), b.Length());
  if (!c->SubmitUpdate(info[1].As<Napi::String>().Utf8Value(), std::move(state), s->shared_from_this(), t,
                       std::move(events))) {
    s->pending.erase(t);
    s->MaybeUnref(env);
    napi_reject_deferred(env, d, ClosedError(env, c).Value());
  }
  return Napi::Value(env, promise);
}

// Reads a body's `ref.length` bytes into `dst` (pread until done, EINTR retried). 0 or an errno;
// EIO for a file that ends early (a truncated segment).
static int PreadBody(const spool::BodyRef& ref, uint8_t* dst) {
  size_t got = 0;
  while (got < ref.length) {
    ssize_t n = pread(ref.fd, dst + got, ref.length - got, static_cast<off_t>(ref.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    got += n;
  }
  return 0;
}

// spoolRead(handle, id) -> Buffer (wire form). Blocks on one pread; the caller owns the Buffer.
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsString()) return ThrowType(env, "spoolRead: id must be a string");
  if (c->Closing()) return ClosedError(env, c).ThrowAsJavaScriptException(), env.Undefined();
  std::string id = info[1].As<Napi::String>().Utf8Value();
  spool::BodyRef ref;
  if (c->Lookup(id, &ref) != 0) return ThrowErrno(env, ENOENT, "read", "no queued message " + id);
  auto buf = Napi::Buffer<uint8_t>::New(env, ref.length);
  if (int err = PreadBody(ref, buf.Data()); err != 0) return ThrowErrno(env, err, "pread", ref.path);
  return buf;
}

// spoolReadInto(handle, id, buffer) -> the body's length. Reads the body (wire form) into the
// start of `buffer` with one pread when it fits; when it does not, reads nothing and returns the
// length all the same, so the caller can retry with a buffer that large. Lets a sender reuse its
// buffers instead of allocating one per message (64 KiB of external memory each drives V8's
// major GCs). Blocks on one pread.
Napi::Value ReadInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsString() || !info[2].IsBuffer())
    return ThrowType(env, "spoolReadInto: expected (id: string, buffer: Buffer)");
  if (c->Closing()) return ClosedError(env, c).ThrowAsJavaScriptException(), env.Undefined();
  std::string id = info[1].As<Napi::String>().Utf8Value();
  auto buf = info[2].As<Napi::Buffer<uint8_t>>();
  spool::BodyRef ref;
  if (c->Lookup(id, &ref) != 0) return ThrowErrno(env, ENOENT, "read", "no queued message " + id);
  if (ref.length <= buf.Length()) {
    if (int err = PreadBody(ref, buf.Data()); err != 0) return ThrowErrno(env, err, "pread", ref.path);
  }
  return Napi::Number::New(env, static_cast<double>(ref.length));
}

// spoolBodyLocation(handle, id) -> { fd, path, offset, length }. fd is a dup the caller owns and
// must close; it stays valid even if the segment is reclaimed or the message copied forward.
Napi::Value BodyLocation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsString()) return ThrowType(env, "spoolBodyLocation: id must be a string");
  std::string id = info[1].As<Napi::String>().Utf8Value();
  if (c->Closing()) return ClosedError(env, c).ThrowAsJavaScriptException(), env.Undefined();
  spool::BodyRef ref;
  if (c->Lookup(id, &ref) != 0) return ThrowErrno(env, ENOENT, "bodyLocation", "no queued message " + id);
  int fd = fcntl(ref.fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, errno, "fcntl", ref.path);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, fd));
  o.Set("path", ref.path);
  o.Set("offset", Napi::Number::New(env, static_cast<double>(ref.offset)));
  o.Set("length", Napi::Number::New(env, static_cast<double>(ref.length)));
  return o;
}

// spoolRecoverBegin(handle, all?) -> cursor over the messages found at open (all: every live
// message) and not done since, oldest first. Lists them as compact refs (no envelope read yet).
Napi::Value RecoverBegin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (c->Closing()) return ClosedError(env, c).ThrowAsJavaScriptException(), env.Undefined();
  bool all = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  spool::RecoverCursor* cur = c->RecoverBegin(all).release();
  return Napi::External<spool::RecoverCursor>::New(env, cur, [](Napi::Env, spool::RecoverCursor* p) { delete p; });
}

// spoolRecoverNext(handle, cursor, max) -> a chunk of at most max messages, or null once all were
// handed out. Columnar, so a million messages are not a million JS objects (docs/performance.md
// "Issue 18: recovery in chunks"): { ids (joined by "\n": ids never hold one), envelopes (one
// Buffer), envOffsets (Uint32Array, count + 1), sizes, arrivals (Float64Array), stateIndex (the
// indices with a saved state, ascending), stateOffsets (Uint32Array, + 1), states (one Buffer) }.
// Blocks on the preads of the chunk's envelopes (those close together in a segment read as one span).
Napi::Value RecoverNext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsExternal() || !info[2].IsNumber())
    return ThrowType(env, "spoolRecoverNext: expected (handle, cursor, max)");
  if (c->Closing()) return ClosedError(env, c).ThrowAsJavaScriptException(), env.Undefined();
  spool::RecoverCursor* cur = info[1].As<Napi::External<spool::RecoverCursor>>().Data();
  double max = info[2].As<Napi::Number>().DoubleValue();
  std::vector<spool::RecoverItem> items = c->RecoverNext(cur, max >= 1 ? static_cast<size_t>(max) : 1);
  if (items.empty()) return env.Null();
  const size_t n = items.size();
  size_t env_total = 0, state_total = 0, with_state = 0, ids_total = 0;
  for (auto& x : items) {
    env_total += x.env_len;
    ids_total += x.id_len + 1;
    if (x.has_state) state_total += x.state.size(), with_state++;
  }
  if (env_total > UINT32_MAX || state_total > UINT32_MAX) return ThrowType(env, "spoolRecoverNext: chunk too large");
  std::string ids;
  ids.reserve(ids_total);
  Napi::Uint32Array env_offs = Napi::Uint32Array::New(env, n + 1);
  Napi::Float64Array sizes = Napi::Float64Array::New(env, n), arrivals = Napi::Float64Array::New(env, n);
  Napi::Uint32Array state_idx = Napi::Uint32Array::New(env, with_state), state_offs = Napi::Uint32Array::New(env, with_state + 1);
  Napi::Buffer<uint8_t> states = Napi::Buffer<uint8_t>::New(env, state_total);
  uint32_t* eo = env_offs.Data();
  uint32_t* si = state_idx.Data();
  uint32_t* so = state_offs.Data();
  uint32_t e_at = 0, s_at = 0, k = 0;
  for (size_t i = 0; i < n; i++) {
    auto& x = items[i];
    if (i > 0) ids.push_back('\n');
    ids.append(cur->ids, x.id_off, x.id_len);
    eo[i] = e_at;
    e_at += x.env_len;
    sizes[i] = static_cast<double>(x.size);
    arrivals[i] = static_cast<double>(x.arrival_ms);
    if (x.has_state) {
      si[k] = static_cast<uint32_t>(i);
      so[k++] = s_at;
      memcpy(states.Data() + s_at, x.state.data(), x.state.size());
      s_at += static_cast<uint32_t>(x.state.size());
    }
  }
  eo[n] = e_at;
  so[k] = s_at;
  // The last chunk: free the list now rather than whenever V8 collects the cursor (it does not
  // know the tens of MiB behind it at a million messages).
  if (cur->next >= cur->refs.size()) {
    std::vector<spool::RecoverCursor::Ref>().swap(cur->refs);
    std::string().swap(cur->ids);
    cur->next = 0;
  }
  Napi::Buffer<uint8_t> envelopes = Napi::Buffer<uint8_t>::New(env, env_total);
  spool::Error err;
  if (!Core::ReadEnvelopes(items, envelopes.Data(), eo, &err)) return ThrowErrno(env, err.err, err.syscall, err.detail);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ids", Napi::String::New(env, ids));
  o.Set("envelopes", envelopes);
  o.Set("envOffsets", env_offs);
  o.Set("sizes", sizes);
  o.Set("arrivals", arrivals);
  o.Set("stateIndex", state_idx);
  o.Set("stateOffsets", state_offs);
  o.Set("states", states);
  return o;
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  spool::Stats s = c->GetStats();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num("messages", s.messages);
  num("bytes", s.bytes);
  num("segments", s.segments);
  num("commits", s.commits);
  num("batches", s.batches);
  num("syncs", s.syncs);
  num("journalEntries", s.journal_entries);
  num("copiedForward", s.copied_forward);
  num("reclaimed", s.reclaimed);
  num("fullErrors", s.full_errors);
  num("ioErrors", s.io_errors);
  num("recovered", s.recovered);
  num("corrupt", s.corrupt);
  num("tornTails", s.torn);
  Napi::Array bounds = Napi::Array::New(env, 12);
  Napi::Array counts = Napi::Array::New(env, 12);
  for (uint32_t i = 0; i < 12; i++) {
    bounds[i] = i < 11 ? Napi::Number::New(env, static_cast<double>(spool::kLatencyBoundsUs[i]))
                       : Napi::Number::New(env, INFINITY);
    counts[i] = Napi::Number::New(env, static_cast<double>(s.latency_buckets[i]));
  }
  o.Set("latencyBoundsUs", bounds);
  o.Set("latencyCounts", counts);
  o.Set("latencySumUs", Napi::Number::New(env, static_cast<double>(s.latency_sum_us)));
  o.Set("crc32cHardware", Napi::Boolean::New(env, spool::Crc32cHardware()));
  return o;
}

// spoolClose(handle) -> Promise<void>: drains queued work, closes files, releases the lock.
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvSink* s = SinkOf(info);
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  napi_deferred d;
  napi_value promise;
  napi_create_promise(env, &d, &promise);
  uint64_t t = s->Add(d, Kind::kVoid, env);
  if (!c->SubmitClose(s->shared_from_this(), t)) {
    s->pending.erase(t);
    s->MaybeUnref(env);
    napi_resolve_deferred(env, d, env.Undefined());  // already closing
  }
  return Napi::Value(env, promise);
}

}  // namespace

void InitSpool(Napi::Env env, Napi::Object exports) {
  auto* holder = new EnvHolder{std::make_shared<EnvSink>()};
  EnvSink* s = holder->sink.get();
  napi_value name;
  napi_create_string_utf8(env, "vipmta.spool", NAPI_AUTO_LENGTH, &name);
  auto* tsfn_ref = new std::shared_ptr<EnvSink>(holder->sink);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, tsfn_ref, TsfnFinalize, s, CallJs,
                                      &s->tsfn) != napi_ok) {
    delete tsfn_ref;
    delete holder;
    return;  // the spool functions stay absent; src/native reports that
  }
  napi_unref_threadsafe_function(env, s->tsfn);
  // Registered after the thread-safe function, so it runs before Node's own teardown of it.
  napi_add_env_cleanup_hook(env, EnvCleanup, holder);
  struct Fn {
    const char* name;
    Napi::Function::Callback cb;
  };
  const Fn fns[] = {
      {"spoolOpen", Open},       {"spoolAttach", Attach},     {"spoolBegin", Begin},
      {"spoolAppend", Append},   {"spoolAbort", Abort},       {"spoolCommit", Commit},
      {"spoolMarkDone", MarkDone}, {"spoolUpdate", Update},   {"spoolRead", Read}, {"spoolReadInto", ReadInto},
      {"spoolBodyLocation", BodyLocation}, {"spoolRecoverBegin", RecoverBegin}, {"spoolRecoverNext", RecoverNext}, {"spoolStats", Stats},
      {"spoolClose", Close},
  };
  for (const Fn& f : fns) exports.Set(f.name, Napi::Function::New(env, f.cb, f.name, s));
  spool_js::InitSpoolEvents(env, exports, s);
}

}  // namespace vipmta
