// The one native module of vipmta. Each subsystem registers its functions on `exports` from its
// own file (socket.cc, netlink_*.cc, spool_*.cc, ...); this file only wires them together. Node-API
// addons are context-aware, so the module loads once per thread (main and each worker).
#include <napi.h>

namespace vipmta {
void InitErrors(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitNetlink(Napi::Env env, Napi::Object exports);
void InitSpool(Napi::Env env, Napi::Object exports);
void InitArp(Napi::Env env, Napi::Object exports);
void InitNdisc(Napi::Env env, Napi::Object exports);
void InitCorosync(Napi::Env env, Napi::Object exports);
}  // namespace vipmta

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vipmta::InitErrors(env, exports);  // first: the others' errors need its per-env data
  vipmta::InitSocket(env, exports);
  vipmta::InitNetlink(env, exports);
  vipmta::InitSpool(env, exports);
  vipmta::InitArp(env, exports);
  vipmta::InitNdisc(env, exports);
  vipmta::InitCorosync(env, exports);
  return exports;
}

NODE_API_MODULE(vipmta, Init)
