// The part of corosync's client ABI the binding uses (libcpg.so.4 and libquorum.so.5 of corosync
// 3.x: cpg.h, quorum.h, corotypes.h), declared here so the addon builds without corosync's headers,
// and the libraries loaded with dlopen at first use (corosync_dl.cc): one build works whether
// corosync was installed before or after it. Any thread once LoadApi has succeeded (on a JS thread).
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vipmta::corosync {

// ---- corotypes.h (checked against the real headers when they are present: corosync_dl.cc) ----
// The enums are C enums there (4 bytes, unsigned: no negative values); only the values used are named,
// and the fixed underlying type keeps any other value corosync returns (CS_ERR_SECURITY = 100) valid.
enum cs_error_t : unsigned int {
  CS_OK = 1,
  CS_ERR_LIBRARY = 2,
  CS_ERR_TRY_AGAIN = 6,
  CS_ERR_INVALID_PARAM = 7,
  CS_ERR_NO_MEMORY = 8,
  CS_ERR_BAD_HANDLE = 9,
  CS_ERR_ACCESS = 11,
  CS_ERR_NOT_EXIST = 12,
  CS_ERR_EXIST = 14,
  CS_ERR_NO_RESOURCES = 18,
  CS_ERR_NOT_SUPPORTED = 19,
  CS_ERR_MESSAGE_ERROR = 22,
  CS_ERR_TOO_BIG = 26,
};
enum cs_dispatch_flags_t : unsigned int { CS_DISPATCH_ALL = 2 };
// corotypes.h's CS_TRACK_CURRENT and CS_TRACK_CHANGES (macros there: other names here, so both headers
// can be included in one file to compare them).
constexpr unsigned int kTrackCurrent = 0x01;
constexpr unsigned int kTrackChanges = 0x02;

// ---- cpg.h ----
using cpg_handle_t = uint64_t;
enum cpg_guarantee_t : unsigned int { CPG_TYPE_AGREED = 2 };
enum cpg_reason_t : unsigned int {
  CPG_REASON_UNDEFINED = 0,
  CPG_REASON_JOIN = 1,
  CPG_REASON_LEAVE = 2,
  CPG_REASON_NODEDOWN = 3,
  CPG_REASON_NODEUP = 4,
  CPG_REASON_PROCDOWN = 5,
};
enum cpg_model_t : unsigned int { CPG_MODEL_V1 = 1 };
struct cpg_address {
  uint32_t nodeid;
  uint32_t pid;
  uint32_t reason;
};
constexpr size_t kCpgMaxNameLength = 128;  // CPG_MAX_NAME_LENGTH
struct cpg_name {
  uint32_t length;
  char value[kCpgMaxNameLength];
};
struct cpg_ring_id {
  uint32_t nodeid;
  uint64_t seq;
};
using cpg_deliver_fn_t = void (*)(cpg_handle_t, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len);
using cpg_confchg_fn_t = void (*)(cpg_handle_t, const cpg_name*, const cpg_address* members, size_t nmembers,
                                  const cpg_address* left, size_t nleft, const cpg_address* joined, size_t njoined);
using cpg_totem_confchg_fn_t = void (*)(cpg_handle_t, cpg_ring_id ring, uint32_t n, const uint32_t* members);
struct cpg_model_data_t {
  cpg_model_t model;
};
constexpr unsigned int kDeliverInitialTotemConf = 0x01;  // CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF
struct cpg_model_v1_data_t {
  cpg_model_t model;
  cpg_deliver_fn_t cpg_deliver_fn;
  cpg_confchg_fn_t cpg_confchg_fn;
  cpg_totem_confchg_fn_t cpg_totem_confchg_fn;
  unsigned int flags;
};

// ---- quorum.h ----
using quorum_handle_t = uint64_t;
using quorum_notification_fn_t = void (*)(quorum_handle_t, uint32_t quorate, uint64_t ring_seq, uint32_t n, uint32_t* members);
struct quorum_callbacks_t {
  quorum_notification_fn_t quorum_notify_fn;
};

// The functions the binding calls, resolved with dlsym. Never unloaded once loaded.
struct Api {
  cs_error_t (*cpg_model_initialize)(cpg_handle_t*, cpg_model_t, cpg_model_data_t*, void* context);
  cs_error_t (*cpg_finalize)(cpg_handle_t);
  cs_error_t (*cpg_fd_get)(cpg_handle_t, int* fd);
  cs_error_t (*cpg_context_get)(cpg_handle_t, void** context);
  cs_error_t (*cpg_dispatch)(cpg_handle_t, cs_dispatch_flags_t);
  cs_error_t (*cpg_join)(cpg_handle_t, const cpg_name*);
  cs_error_t (*cpg_leave)(cpg_handle_t, const cpg_name*);
  cs_error_t (*cpg_mcast_joined)(cpg_handle_t, cpg_guarantee_t, const iovec*, unsigned int iov_len);
  cs_error_t (*cpg_local_get)(cpg_handle_t, unsigned int* nodeid);
  cs_error_t (*quorum_initialize)(quorum_handle_t*, quorum_callbacks_t*, uint32_t* quorum_type);
  cs_error_t (*quorum_finalize)(quorum_handle_t);
  cs_error_t (*quorum_fd_get)(quorum_handle_t, int* fd);
  cs_error_t (*quorum_dispatch)(quorum_handle_t, cs_dispatch_flags_t);
  cs_error_t (*quorum_getquorate)(quorum_handle_t, int* quorate);
  cs_error_t (*quorum_trackstart)(quorum_handle_t, unsigned int flags);
  cs_error_t (*quorum_context_set)(quorum_handle_t, const void* context);
  cs_error_t (*quorum_context_get)(quorum_handle_t, const void** context);
};

// The sonames loaded (corosync 3.x; Debian packages libcpg4 and libquorum5, installed with corosync).
constexpr const char* kLibCpg = "libcpg.so.4";
constexpr const char* kLibQuorum = "libquorum.so.5";

// Loads both libraries and resolves every function on the first call; after a failure the next
// call tries again (corosync may have been installed meanwhile). Null with *why (a sentence saying
// what to install) when a library or a function is missing. Thread-safe; a few ms at most (dlopen).
const Api* LoadApi(std::string* why);
// The loaded table; only after LoadApi succeeded (every Connection exists only after it did).
const Api& Lib();
// The files the libraries were loaded from ("/usr/lib/x86_64-linux-gnu/libcpg.so.4"), empty before.
std::string CpgPath();
std::string QuorumPath();

}  // namespace vipmta::corosync
