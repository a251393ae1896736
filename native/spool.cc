// Placeholder so the addon links while this part is written; replaced by the real spool code.
#include <napi.h>
namespace vipmta {
void InitSpool(Napi::Env env, Napi::Object exports) {}
}  // namespace vipmta
