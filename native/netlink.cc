// Placeholder so the addon links while this part is written; replaced by the real netlink code.
#include <napi.h>
namespace vipmta {
void InitNetlink(Napi::Env env, Napi::Object exports) {}
}  // namespace vipmta
