// The spool engine's lifecycle and shared state (see spool_core.h): open (then recovery, in
// spool_recovery.cc), the process-wide registry, submission and reads from any JS thread, close.
// The batch itself runs in spool_commit.cc (commit thread). Never touches Node-API; errors are
// errno values carried back in Error / Completion. Blocks on file I/O only at open.
#include "spool_core.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <string_view>

#include "spool_file.h"
#include "spool_format.h"

namespace vipmta::spool {
namespace {

// Leaked on purpose: a static destructor must never run while a detached commit thread still
// uses a Core at process exit.
std::mutex g_reg_mu;
std::map<std::string, std::shared_ptr<Core>>* const g_registry = new std::map<std::string, std::shared_ptr<Core>>();

}  // namespace

std::string SanitizeNodeId(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (out.size() >= 32) break;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    out.push_back(ok ? c : '-');
  }
  if (out.empty()) out = "node";
  return out;
}

Segment::~Segment() {
  if (fd >= 0) close(fd);
}

// ---- open (thread that opens the spool) -------------------------------------------------------

std::shared_ptr<Core> Core::Find(const std::string& directory) {
  char rp[PATH_MAX];
  if (realpath(directory.c_str(), rp) == nullptr) return nullptr;
  std::lock_guard<std::mutex> g(g_reg_mu);
  auto it = g_registry->find(rp);
  return it == g_registry->end() ? nullptr : it->second;
}

std::shared_ptr<Core> Core::Open(const Options& o, Error* e, std::vector<RecoveryEvent>* events) {
  int err = MkdirP(o.directory);
  if (err != 0) {
    *e = {err, "mkdir", nullptr, o.directory};
    return nullptr;
  }
  char rp[PATH_MAX];
  if (realpath(o.directory.c_str(), rp) == nullptr) {
    *e = {errno, "realpath", nullptr, o.directory};
    return nullptr;
  }
  std::lock_guard<std::mutex> g(g_reg_mu);
  if (g_registry->count(rp) != 0) {
    *e = {EBUSY, "open", nullptr, std::string(rp) + " is already open in this process"};
    return nullptr;
  }
  std::shared_ptr<Core> c(new Core());
  c->o_ = o;
  c->dir_ = rp;
  c->dir_fd_ = open(rp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->dir_fd_ < 0) {
    *e = {errno, "open", nullptr, c->dir_};
    return nullptr;
  }
  if (mkdir((c->dir_ + "/corrupt").c_str(), 0750) != 0 && errno != EEXIST) {
    *e = {errno, "mkdir", nullptr, c->dir_ + "/corrupt"};
    return nullptr;
  }
  std::string lock = c->dir_ + "/lock";
  c->lock_fd_ = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (c->lock_fd_ < 0) {
    *e = {errno, "open", nullptr, lock};
    return nullptr;
  }
  if (flock(c->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int fe = errno;
    char pid[32] = {0};
    ssize_t n = pread(c->lock_fd_, pid, sizeof pid - 1, 0);
    std::string who = n > 0 ? std::string(pid, strcspn(pid, "\n")) : "?";
    *e = {fe, "flock", nullptr, c->dir_ + " is in use by another process (pid " + who + ")"};
    return nullptr;
  }
  char pid[32];
  int pn = snprintf(pid, sizeof pid, "%d\n", getpid());
  if (ftruncate(c->lock_fd_, 0) != 0 || PwriteAll(c->lock_fd_, reinterpret_cast<uint8_t*>(pid), pn, 0) != 0) {
    *e = {errno, "write", nullptr, lock};
    return nullptr;
  }
  if (!c->Recover(e, events)) return nullptr;
  if (!c->ev_.Open(c->dir_, o.node_id, o.events, o.sync, o.prealloc != Prealloc::kNone, e, events)) return nullptr;
  std::shared_ptr<Core> self = c;
  std::thread([self] { self->Run(); }).detach();
  if (o.prealloc == Prealloc::kZero) {
    std::thread([self] { self->Prepare(); }).detach();
  } else {
    c->prep_done_ = true;
  }
  (*g_registry)[c->dir_] = c;
  return c;
}

// ---- submission (any JS thread) ---------------------------------------------------------------

bool Core::Submit(Op&& op) {
  std::lock_guard<std::mutex> g(mu_);
  if (closing_) return false;
  if (op.kind == Op::kClose) closing_ = true;
  pending_.push_back(std::move(op));
  cv_.notify_one();
  return true;
}

bool Core::SubmitMessage(std::unique_ptr<Message> m, std::shared_ptr<Notifier> n, uint64_t token,
                         std::vector<EventIn> events) {
  Op op;
  op.kind = Op::kMessage;
  op.msg = std::move(m);
  op.events = std::move(events);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitDone(std::vector<std::string> ids, std::shared_ptr<Notifier> n, uint64_t token,
                      std::vector<EventIn> events) {
  Op op;
  op.kind = Op::kDone;
  op.ids = std::move(ids);
  op.events = std::move(events);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitUpdate(std::string id, std::string state, std::shared_ptr<Notifier> n, uint64_t token,
                        std::vector<EventIn> events) {
  Op op;
  op.kind = Op::kUpdate;
  op.id = std::move(id);
  op.events = std::move(events);
  op.data = std::move(state);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitEvents(std::vector<EventIn> events, std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kEvents;
  op.events = std::move(events);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitEventsTrim(std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kEventsTrim;
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitClose(std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kClose;
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

void Core::CloseAndWait() {
  SubmitClose(nullptr, 0);
  std::unique_lock<std::mutex> lk(mu_);
  cv_finished_.wait(lk, [this] { return finished_; });
}

bool Core::Closing() {
  std::lock_guard<std::mutex> g(mu_);
  return closing_;
}

// ---- reads (any JS thread) --------------------------------------------------------------------

int Core::Lookup(const std::string& id, BodyRef* out) {
  std::shared_lock<std::shared_mutex> g(idx_mu_);
  uint32_t slot = index_.Find(id);
  if (slot == Index::kNone || index_.at(slot).done || !index_.at(slot).seg) return ENOENT;
  const Entry& en = index_.at(slot);
  out->seg = en.seg->shared_from_this();
  out->fd = en.seg->fd;
  out->path = en.seg->path;
  out->offset = en.rec_off + kRecHdr + en.id_len;
  out->length = en.body_len;
  return 0;
}

std::unique_ptr<RecoverCursor> Core::RecoverBegin(bool all) {
  auto cur = std::make_unique<RecoverCursor>();
  cur->all = all;
  {
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    index_.ForEach([&](uint32_t slot, const Entry& en) {
      if ((!all && !en.recovered) || en.done || !en.seg) return;
      std::string id = index_.Id(slot);
      cur->refs.push_back({en.arrival_ms, cur->ids.size(), static_cast<uint16_t>(id.size())});
      cur->ids.append(id);
    });
  }
  const std::string& ids = cur->ids;
  std::sort(cur->refs.begin(), cur->refs.end(), [&ids](const RecoverCursor::Ref& a, const RecoverCursor::Ref& b) {
    if (a.arrival_ms != b.arrival_ms) return a.arrival_ms < b.arrival_ms;
    return std::string_view(ids.data() + a.id_off, a.id_len) < std::string_view(ids.data() + b.id_off, b.id_len);
  });
  return cur;
}

std::vector<RecoverItem> Core::RecoverNext(RecoverCursor* cur, size_t max) {
  std::vector<RecoverItem> out;
  if (max == 0) max = 1;
  std::string key;  // reused: no allocation per lookup
  // A chunk whose every message was done meanwhile is not handed out empty: take the next refs.
  while (out.empty() && cur->next < cur->refs.size()) {
    size_t end = std::min(cur->refs.size(), cur->next + max);
    out.reserve(end - cur->next);
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    for (; cur->next < end; cur->next++) {
      const RecoverCursor::Ref& r = cur->refs[cur->next];
      key.assign(cur->ids, r.id_off, r.id_len);
      uint32_t slot = index_.Find(key);
      if (slot == Index::kNone) continue;
      const Entry& en = index_.at(slot);
      if (en.done || !en.seg) continue;
      RecoverItem& x = out.emplace_back();
      x.seg = en.seg->shared_from_this();
      x.env_off = en.rec_off + kRecHdr + en.id_len + en.body_len;
      x.env_len = en.env_len;
      x.size = en.body_len;
      x.arrival_ms = en.arrival_ms;
      x.id_off = r.id_off;
      x.id_len = r.id_len;
      x.has_state = en.has_state;
      if (en.has_state) x.state = index_.State(slot);
    }
  }
  return out;
}

bool Core::ReadEnvelopes(const std::vector<RecoverItem>& items, uint8_t* dst, const uint32_t* offs, Error* e) {
  // In file order (segment, offset): the reads walk each segment forward, kind to the page cache.
  std::vector<uint32_t> order(items.size());
  for (uint32_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&items](uint32_t a, uint32_t b) {
    const RecoverItem &x = items[a], &y = items[b];
    return x.seg->no != y.seg->no ? x.seg->no < y.seg->no : x.env_off < y.env_off;
  });
  // Envelopes close together in one file (each follows its body) are read with one pread of the
  // span between them: a million pread calls were a third of recovery's native time.
  constexpr uint64_t kMaxGap = 16 * 1024, kMaxSpan = 1024 * 1024;
  std::vector<uint8_t> span;
  for (size_t a = 0; a < order.size();) {
    const RecoverItem& first = items[order[a]];
    uint64_t lo = first.env_off, hi = first.env_off + first.env_len;
    size_t b = a + 1;
    for (; b < order.size(); b++) {
      const RecoverItem& x = items[order[b]];
      if (x.seg != first.seg || x.env_off > hi + kMaxGap || x.env_off + x.env_len - lo > kMaxSpan) break;
      hi = std::max(hi, x.env_off + x.env_len);
    }
    uint8_t* to = dst + offs[order[a]];
    if (b - a > 1) {
      span.resize(hi - lo);
      to = span.data();
    }
    size_t got = 0;
    while (got < hi - lo) {
      ssize_t n = pread(first.seg->fd, to + got, hi - lo - got, static_cast<off_t>(lo + got));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        *e = {n < 0 ? errno : EIO, "pread", nullptr, first.seg->path};
        return false;
      }
      got += n;
    }
    if (b - a > 1)
      for (size_t j = a; j < b; j++) {
        const RecoverItem& x = items[order[j]];
        memcpy(dst + offs[order[j]], span.data() + (x.env_off - lo), x.env_len);
      }
    a = b;
  }
  return true;
}

Stats Core::GetStats() {
  std::shared_lock<std::shared_mutex> g(idx_mu_);
  Stats s = stats_;
  s.segments = segments_.size();
  return s;
}

Core::~Core() {
  if (jrn_fd_ >= 0) close(jrn_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);
  if (dir_fd_ >= 0) close(dir_fd_);
}

// ---- close (commit thread, after the last batch) ----------------------------------------------

void Core::Finish() {
  {
    std::unique_lock<std::mutex> lk(prep_mu_);
    prep_stop_ = true;
    prep_abort_.store(true);
    prep_cv_.notify_all();
    prep_cv_.wait(lk, [this] { return prep_done_; });
  }
  if (jrn_fd_ >= 0) close(jrn_fd_);
  jrn_fd_ = -1;
  ev_.Close();
  cur_.reset();
  {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    index_.Clear();
    segments_.clear();
  }
  {
    std::lock_guard<std::mutex> g(g_reg_mu);
    auto it = g_registry->find(dir_);
    if (it != g_registry->end() && it->second.get() == this) g_registry->erase(it);
  }
  if (lock_fd_ >= 0) {
    flock(lock_fd_, LOCK_UN);
    close(lock_fd_);
    lock_fd_ = -1;
  }
  if (dir_fd_ >= 0) close(dir_fd_);
  dir_fd_ = -1;
}

}  // namespace vipmta::spool
