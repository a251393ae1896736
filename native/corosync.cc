// Corosync binding (CPG and quorum): placeholder so the addon links while the binding is written.
// JS thread only; registers nothing yet.
#include <napi.h>
namespace vipmta {
void InitCorosync(Napi::Env env, Napi::Object exports) {}
}  // namespace vipmta
