// Loads libcpg and libquorum with dlopen at first use and resolves the functions the binding calls
// (corosync_dl.h declares their ABI). Where corosync's headers are present at build time, the
// declarations are checked against them here; the addon does not need them. JS thread (LoadApi,
// under a mutex: worker threads may join too); blocks only on dlopen's file reads.
#include "corosync_dl.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <type_traits>

#if __has_include(<corosync/cpg.h>) && __has_include(<corosync/quorum.h>)
#include <corosync/cpg.h>
#include <corosync/quorum.h>

// Our declarations against the real ones: a corosync whose ABI moved fails the build here, where
// its headers are installed (scripts/test-all.sh installs them), instead of corrupting memory.
namespace vipmta::corosync::abi_check {
namespace c = vipmta::corosync;

// Same arity and the same size for the result and each parameter (the types themselves differ:
// ours live in our namespace).
template <typename T>
constexpr size_t kSize = sizeof(T);
template <>
constexpr size_t kSize<void> = 0;
template <typename A, typename B>
struct SameShape : std::false_type {};
template <typename RA, typename... A, typename RB, typename... B>
struct SameShape<RA (*)(A...), RB (*)(B...)>
    : std::bool_constant<sizeof...(A) == sizeof...(B) && kSize<RA> == kSize<RB> && ((sizeof(A) == sizeof(B)) && ...)> {};
#define VIPMTA_SAME_FN(name) static_assert(SameShape<decltype(&::name), decltype(c::Api::name)>::value, #name " changed shape")
VIPMTA_SAME_FN(cpg_model_initialize);
VIPMTA_SAME_FN(cpg_finalize);
VIPMTA_SAME_FN(cpg_fd_get);
VIPMTA_SAME_FN(cpg_context_get);
VIPMTA_SAME_FN(cpg_dispatch);
VIPMTA_SAME_FN(cpg_join);
VIPMTA_SAME_FN(cpg_leave);
VIPMTA_SAME_FN(cpg_mcast_joined);
VIPMTA_SAME_FN(cpg_local_get);
VIPMTA_SAME_FN(quorum_initialize);
VIPMTA_SAME_FN(quorum_finalize);
VIPMTA_SAME_FN(quorum_fd_get);
VIPMTA_SAME_FN(quorum_dispatch);
VIPMTA_SAME_FN(quorum_getquorate);
VIPMTA_SAME_FN(quorum_trackstart);
VIPMTA_SAME_FN(quorum_context_set);
VIPMTA_SAME_FN(quorum_context_get);
#undef VIPMTA_SAME_FN
static_assert(SameShape<::cpg_deliver_fn_t, c::cpg_deliver_fn_t>::value);
static_assert(SameShape<::cpg_confchg_fn_t, c::cpg_confchg_fn_t>::value);
static_assert(SameShape<::cpg_totem_confchg_fn_t, c::cpg_totem_confchg_fn_t>::value);
static_assert(SameShape<::quorum_notification_fn_t, c::quorum_notification_fn_t>::value);

#define VIPMTA_SAME_LAYOUT(ours, theirs) \
  static_assert(sizeof(c::ours) == sizeof(theirs) && alignof(c::ours) == alignof(theirs), #ours " changed size")
VIPMTA_SAME_LAYOUT(cs_error_t, ::cs_error_t);
VIPMTA_SAME_LAYOUT(cs_dispatch_flags_t, ::cs_dispatch_flags_t);
VIPMTA_SAME_LAYOUT(cpg_handle_t, ::cpg_handle_t);
VIPMTA_SAME_LAYOUT(quorum_handle_t, ::quorum_handle_t);
VIPMTA_SAME_LAYOUT(cpg_guarantee_t, ::cpg_guarantee_t);
VIPMTA_SAME_LAYOUT(cpg_model_t, ::cpg_model_t);
VIPMTA_SAME_LAYOUT(cpg_address, struct ::cpg_address);
VIPMTA_SAME_LAYOUT(cpg_name, struct ::cpg_name);
VIPMTA_SAME_LAYOUT(cpg_ring_id, struct ::cpg_ring_id);
VIPMTA_SAME_LAYOUT(cpg_model_data_t, ::cpg_model_data_t);
VIPMTA_SAME_LAYOUT(cpg_model_v1_data_t, ::cpg_model_v1_data_t);
VIPMTA_SAME_LAYOUT(quorum_callbacks_t, ::quorum_callbacks_t);
#undef VIPMTA_SAME_LAYOUT
#define VIPMTA_SAME_OFFSET(ours, theirs, field) \
  static_assert(offsetof(c::ours, field) == offsetof(theirs, field), #ours "." #field " moved")
VIPMTA_SAME_OFFSET(cpg_address, struct ::cpg_address, nodeid);
VIPMTA_SAME_OFFSET(cpg_address, struct ::cpg_address, pid);
VIPMTA_SAME_OFFSET(cpg_address, struct ::cpg_address, reason);
VIPMTA_SAME_OFFSET(cpg_name, struct ::cpg_name, value);
VIPMTA_SAME_OFFSET(cpg_ring_id, struct ::cpg_ring_id, seq);
VIPMTA_SAME_OFFSET(cpg_model_v1_data_t, ::cpg_model_v1_data_t, cpg_deliver_fn);
VIPMTA_SAME_OFFSET(cpg_model_v1_data_t, ::cpg_model_v1_data_t, cpg_confchg_fn);
VIPMTA_SAME_OFFSET(cpg_model_v1_data_t, ::cpg_model_v1_data_t, cpg_totem_confchg_fn);
VIPMTA_SAME_OFFSET(cpg_model_v1_data_t, ::cpg_model_v1_data_t, flags);
#undef VIPMTA_SAME_OFFSET

static_assert(c::kTrackCurrent == CS_TRACK_CURRENT && c::kTrackChanges == CS_TRACK_CHANGES);
static_assert(c::kCpgMaxNameLength == CPG_MAX_NAME_LENGTH);
static_assert(c::kDeliverInitialTotemConf == CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF);
#define VIPMTA_SAME_VALUE(name) static_assert(static_cast<unsigned>(c::name) == static_cast<unsigned>(::name), #name)
VIPMTA_SAME_VALUE(CS_DISPATCH_ALL);
VIPMTA_SAME_VALUE(CPG_TYPE_AGREED);
VIPMTA_SAME_VALUE(CPG_MODEL_V1);
VIPMTA_SAME_VALUE(CS_OK);
VIPMTA_SAME_VALUE(CS_ERR_LIBRARY);
VIPMTA_SAME_VALUE(CS_ERR_TRY_AGAIN);
VIPMTA_SAME_VALUE(CS_ERR_INVALID_PARAM);
VIPMTA_SAME_VALUE(CS_ERR_NO_MEMORY);
VIPMTA_SAME_VALUE(CS_ERR_BAD_HANDLE);
VIPMTA_SAME_VALUE(CS_ERR_ACCESS);
VIPMTA_SAME_VALUE(CS_ERR_NOT_EXIST);
VIPMTA_SAME_VALUE(CS_ERR_EXIST);
VIPMTA_SAME_VALUE(CS_ERR_NO_RESOURCES);
VIPMTA_SAME_VALUE(CS_ERR_NOT_SUPPORTED);
VIPMTA_SAME_VALUE(CS_ERR_MESSAGE_ERROR);
VIPMTA_SAME_VALUE(CS_ERR_TOO_BIG);
VIPMTA_SAME_VALUE(CPG_REASON_UNDEFINED);
VIPMTA_SAME_VALUE(CPG_REASON_JOIN);
VIPMTA_SAME_VALUE(CPG_REASON_LEAVE);
VIPMTA_SAME_VALUE(CPG_REASON_NODEDOWN);
VIPMTA_SAME_VALUE(CPG_REASON_NODEUP);
VIPMTA_SAME_VALUE(CPG_REASON_PROCDOWN);
#undef VIPMTA_SAME_VALUE
}  // namespace vipmta::corosync::abi_check
#endif

namespace vipmta::corosync {

namespace {

std::mutex mu;
Api api{};
std::atomic<bool> loaded{false};
void* cpgLib = nullptr;     // kept across failed attempts: dlopen counts references
void* quorumLib = nullptr;
std::string cpgPath, quorumPath;

bool OpenLib(const char* soname, void** handle, std::string* why) {
  if (*handle != nullptr) return true;
  dlerror();
  *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (*handle != nullptr) return true;
  const char* e = dlerror();
  *why = std::string(soname) + " cannot be loaded (" + (e != nullptr ? e : "dlopen failed") +
         "): corosync's client libraries are missing; install corosync (Debian: apt-get install corosync)";
  return false;
}

template <typename F>
bool Sym(void* handle, const char* soname, const char* name, F* out, std::string* why) {
  void* p = dlsym(handle, name);
  if (p == nullptr) {
    *why = std::string(soname) + " has no " + name + ": vipmta needs the client libraries of corosync 3";
    return false;
  }
  *out = reinterpret_cast<F>(p);
  return true;
}

std::string FileOf(void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
  return "";
}

}  // namespace

const Api* LoadApi(std::string* why) {
  if (loaded.load(std::memory_order_acquire)) return &api;
  std::lock_guard<std::mutex> lk(mu);
  if (loaded.load(std::memory_order_relaxed)) return &api;
  if (!OpenLib(kLibCpg, &cpgLib, why) || !OpenLib(kLibQuorum, &quorumLib, why)) return nullptr;
  Api a{};
#define VIPMTA_CPG(name) Sym(cpgLib, kLibCpg, #name, &a.name, why)
#define VIPMTA_QUORUM(name) Sym(quorumLib, kLibQuorum, #name, &a.name, why)
  bool ok = VIPMTA_CPG(cpg_model_initialize) && VIPMTA_CPG(cpg_finalize) && VIPMTA_CPG(cpg_fd_get) &&
            VIPMTA_CPG(cpg_context_get) && VIPMTA_CPG(cpg_dispatch) && VIPMTA_CPG(cpg_join) && VIPMTA_CPG(cpg_leave) &&
            VIPMTA_CPG(cpg_mcast_joined) && VIPMTA_CPG(cpg_local_get) && VIPMTA_QUORUM(quorum_initialize) &&
            VIPMTA_QUORUM(quorum_finalize) && VIPMTA_QUORUM(quorum_fd_get) && VIPMTA_QUORUM(quorum_dispatch) &&
            VIPMTA_QUORUM(quorum_getquorate) && VIPMTA_QUORUM(quorum_trackstart) &&
            VIPMTA_QUORUM(quorum_context_set) && VIPMTA_QUORUM(quorum_context_get);
#undef VIPMTA_CPG
#undef VIPMTA_QUORUM
  if (!ok) return nullptr;
  api = a;
  cpgPath = FileOf(reinterpret_cast<void*>(a.cpg_join));
  quorumPath = FileOf(reinterpret_cast<void*>(a.quorum_initialize));
  loaded.store(true, std::memory_order_release);
  return &api;
}

const Api& Lib() { return api; }

std::string CpgPath() {
  std::lock_guard<std::mutex> lk(mu);
  return cpgPath;
}

std::string QuorumPath() {
  std::lock_guard<std::mutex> lk(mu);
  return quorumPath;
}

}  // namespace vipmta::corosync
