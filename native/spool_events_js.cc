// Node-API bindings of the spool's event journal (engine: spool_events.h): events alone, trim,
// counters, the durable head, and CRC32C for the TypeScript reader (src/spool/events.ts). Each
// runs on the JS thread that calls it and is short; appendEvents and trim return Promises settled
// on that thread after the commit thread's batch (see spool.cc). No file I/O here.
#include <napi.h>

#include "errors.h"
#include "spool_core.h"
#include "spool_crc.h"
#include "spool_file.h"
#include "spool_js.h"

namespace vipmta::spool_js {

bool TakeEvent(Napi::Env env, Napi::Value data, std::string id, std::vector<spool::EventIn>* out, const char* fn) {
  if (!data.IsBuffer()) {
    ThrowType(env, std::string(fn) + ": an event's data must be a Buffer");
    return false;
  }
  auto b = data.As<Napi::Buffer<uint8_t>>();
  if (b.Length() > spool::kMaxEventPayload) {
    ThrowCode(env, "ERR_OUT_OF_RANGE", std::string(fn) + ": event larger than 1 MiB");
    return false;
  }
  if (id.size() > spool::kMaxEventId) {
    ThrowCode(env, "ERR_OUT_OF_RANGE", std::string(fn) + ": event id longer than 64 bytes");
    return false;
  }
  out->push_back({std::move(id), std::string(reinterpret_cast<const char*>(b.Data()), b.Length()), spool::WallMs()});
  return true;
}

bool TakeEvents(Napi::Env env, Napi::Value v, std::vector<spool::EventIn>* out, const char* fn) {
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsArray()) {
    ThrowType(env, std::string(fn) + ": events must be an array of { id?, data }");
    return false;
  }
  Napi::Array a = v.As<Napi::Array>();
  out->reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a[i];
    if (!e.IsObject()) {
      ThrowType(env, std::string(fn) + ": events must be an array of { id?, data }");
      return false;
    }
    Napi::Object o = e.As<Napi::Object>();
    Napi::Value id = o.Get("id");
    if (!id.IsUndefined() && !id.IsString()) {
      ThrowType(env, std::string(fn) + ": an event's id must be a string");
      return false;
    }
    if (!TakeEvent(env, o.Get("data"), id.IsString() ? id.As<Napi::String>().Utf8Value() : std::string(), out, fn))
      return false;
  }
  return true;
}

namespace {

// spoolAppendEvents(handle, [{ id?, data }]) -> Promise<void>, settled after the events are
// synced, group-committed with whatever else is in the batch. Any thread that has a handle.
Napi::Value AppendEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvSink* s = SinkOf(info);
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  std::vector<spool::EventIn> events;
  if (info.Length() < 2 || !info[1].IsArray()) return ThrowType(env, "spoolAppendEvents: events must be an array");
  if (!TakeEvents(env, info[1], &events, "spoolAppendEvents")) return env.Undefined();
  napi_deferred d;
  napi_value promise;
  napi_create_promise(env, &d, &promise);
  if (events.empty()) {
    napi_resolve_deferred(env, d, env.Undefined());
    return Napi::Value(env, promise);
  }
  uint64_t t = s->Add(d, Kind::kVoid, env);
  if (!c->SubmitEvents(std::move(events), s->shared_from_this(), t)) {
    s->pending.erase(t);
    s->MaybeUnref(env);
    napi_reject_deferred(env, d, ClosedError(env, c).Value());
  }
  return Napi::Value(env, promise);
}

// spoolEventsTrim(handle) -> Promise<number>: removes the event segments every subscriber has
// passed (beyond the retention), on the commit thread; resolves with how many.
Napi::Value EventsTrim(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvSink* s = SinkOf(info);
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  napi_deferred d;
  napi_value promise;
  napi_create_promise(env, &d, &promise);
  uint64_t t = s->Add(d, Kind::kCount, env);
  if (!c->SubmitEventsTrim(s->shared_from_this(), t)) {
    s->pending.erase(t);
    s->MaybeUnref(env);
    napi_reject_deferred(env, d, ClosedError(env, c).Value());
  }
  return Napi::Value(env, promise);
}

// spoolEventsStats(handle) -> the event journal's counters and segment list. Any thread.
Napi::Value EventsStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  spool::EventStats s = c->GetEventStats();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](Napi::Object& x, const char* k, uint64_t v) { x.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num(o, "segments", s.segments);
  num(o, "bytes", s.bytes);
  num(o, "firstSeq", s.first_seq);
  num(o, "lastSeq", s.last_seq);
  num(o, "appended", s.appended);
  num(o, "refused", s.refused);
  num(o, "writeErrors", s.write_errors);
  num(o, "damaged", s.damaged);
  num(o, "tornTails", s.torn);
  num(o, "droppedRecords", s.dropped_records);
  num(o, "droppedSegments", s.dropped_segments);
  num(o, "trimmedSegments", s.trimmed_segments);
  num(o, "cap", s.cap);
  num(o, "alarmBytes", s.alarm_bytes);
  num(o, "retention", s.retention);
  o.Set("atCap", s.at_cap_refuse ? "refuse" : "drop_oldest");
  Napi::Array drops = Napi::Array::New(env, s.drops.size());
  for (size_t i = 0; i < s.drops.size(); i++) {
    Napi::Object x = Napi::Object::New(env);
    num(x, "fromSeq", s.drops[i].from_seq);
    num(x, "toSeq", s.drops[i].to_seq);
    num(x, "at", static_cast<uint64_t>(s.drops[i].at_ms));
    Napi::Array subs = Napi::Array::New(env, s.drops[i].subscribers.size());
    for (size_t k = 0; k < s.drops[i].subscribers.size(); k++) subs[k] = Napi::String::New(env, s.drops[i].subscribers[k]);
    x.Set("subscribers", subs);
    drops[i] = x;
  }
  o.Set("drops", drops);
  Napi::Array segs = Napi::Array::New(env, s.segment_list.size());
  for (size_t i = 0; i < s.segment_list.size(); i++) {
    Napi::Object x = Napi::Object::New(env);
    num(x, "no", s.segment_list[i].no);
    num(x, "firstSeq", s.segment_list[i].first_seq);
    num(x, "lastSeq", s.segment_list[i].last_seq);
    num(x, "bytes", s.segment_list[i].bytes);
    segs[i] = x;
  }
  o.Set("segmentList", segs);
  return o;
}

// spoolEventsHead(handle) -> the last durable event sequence number (0: none). Any thread.
Napi::Value EventsHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Core* c = UnwrapCore(info, 0);
  if (c == nullptr) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(c->EventHead()));
}

// spoolCrc32c(buffer, start, end, crc?) -> number: CRC32C of buffer[start, end), chained from crc.
// For the event journal's reader. Any thread; pure computation.
Napi::Value Crc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber())
    return ThrowType(env, "spoolCrc32c: expected (buffer, start, end, crc?)");
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  int64_t start = info[1].As<Napi::Number>().Int64Value(), end = info[2].As<Napi::Number>().Int64Value();
  if (start < 0 || end < start || static_cast<uint64_t>(end) > b.Length()) return ThrowCode(env, "ERR_OUT_OF_RANGE", "spoolCrc32c: bad range");
  uint32_t crc = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(env, spool::Crc32c(crc, b.Data() + start, static_cast<size_t>(end - start)));
}

}  // namespace

void InitSpoolEvents(Napi::Env env, Napi::Object exports, EnvSink* s) {
  struct Fn {
    const char* name;
    Napi::Function::Callback cb;
  };
  const Fn fns[] = {
      {"spoolAppendEvents", AppendEvents}, {"spoolEventsTrim", EventsTrim}, {"spoolEventsStats", EventsStats},
      {"spoolEventsHead", EventsHead},     {"spoolCrc32c", Crc},
  };
  for (const Fn& f : fns) exports.Set(f.name, Napi::Function::New(env, f.cb, f.name, s));
}

}  // namespace vipmta::spool_js
