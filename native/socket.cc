// Placeholder so the addon links while this part is written; replaced by the real socket code.
#include <napi.h>
namespace vipmta {
void InitSocket(Napi::Env env, Napi::Object exports) {}
}  // namespace vipmta
