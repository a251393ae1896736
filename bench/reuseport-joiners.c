// Can a SO_REUSEPORT group be kept to its own sockets once they listen? With three sockets of one uid
// on 127.0.0.1 (ours a, b; a later joiner j): clearing SO_REUSEPORT on a and b, and a cBPF "ret #0"
// on the group, before and after a closes. Then holdPort's guard (docs/performance.md).
//   gcc -O1 -o /tmp/reuseport-joiners bench/reuseport-joiners.c && /tmp/reuseport-joiners
// One thread; blocks only in short usleep()s while connecting.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in addr(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(0x7f000001);
  return a;
}

static int listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = addr(port);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

// 60 connections; prints which of a, b, j accepted them.
static void count(int port, const int* fds, const char* what) {
  int got[3] = {0};
  for (int i = 0; i < 60; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in s = addr(port);
    connect(c, (struct sockaddr*)&s, sizeof s);
    usleep(1000);
    for (int k = 0; k < 3; k++) {
      if (fds[k] < 0) continue;
      int x = accept4(fds[k], NULL, NULL, 0);
      if (x >= 0) got[k]++, close(x);
    }
    close(c);
  }
  printf("%s: a %d, b %d, joiner %d\n", what, got[0], got[1], got[2]);
}

// A bind with the given options (and listen when lis); prints whether it worked.
static int try_bind(int port, int reuseaddr, int reuseport, int lis, const char* what) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (reuseaddr) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = addr(port);
  int ok = bind(fd, (struct sockaddr*)&a, sizeof a) == 0 && (!lis || listen(fd, 16) == 0);
  printf("  %-44s %s\n", what, ok ? "binds" : strerror(errno));
  if (!ok) close(fd);
  return ok ? fd : -1;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = addr(0);
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr*)&a, sizeof a);
  getsockname(fd, (struct sockaddr*)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

int main(void) {
  int zero = 0, fds[3];
  int port = free_port();
  fds[0] = listener(port), fds[1] = listener(port);
  setsockopt(fds[0], SOL_SOCKET, SO_REUSEPORT, &zero, sizeof zero);
  setsockopt(fds[1], SOL_SOCKET, SO_REUSEPORT, &zero, sizeof zero);
  fds[2] = listener(port);
  printf("SO_REUSEPORT cleared on a and b after listen: the joiner %s\n", fds[2] >= 0 ? "binds" : "is refused");
  if (fds[2] >= 0) count(port, fds, "  then");
  for (int k = 0; k < 3; k++) if (fds[k] >= 0) close(fds[k]);

  port = free_port();
  fds[0] = listener(port), fds[1] = listener(port);
  struct sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_fprog prog = {1, code};
  if (setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) printf("attach: %s\n", strerror(errno));
  fds[2] = listener(port);
  printf("cBPF \"ret #0\" on the group: the joiner %s\n", fds[2] >= 0 ? "binds" : "is refused");
  count(port, fds, "  with a, b and the joiner");
  close(fds[0]);
  fds[0] = -1;
  count(port, fds, "  after a (index 0) closed");
  for (int k = 1; k < 3; k++) close(fds[k]);

  port = free_port();
  printf("holdPort's guard: bound, never listening, SO_REUSEPORT without SO_REUSEADDR\n");
  int guard = try_bind(port, 0, 1, 0, "guard");
  int probe = try_bind(port, 1, 0, 0, "another vipmta's probe (SO_REUSEADDR)");
  int plain = try_bind(port, 1, 0, 1, "a plain listener (SO_REUSEADDR)");
  int w1 = try_bind(port, 1, 1, 1, "our worker (SO_REUSEADDR, SO_REUSEPORT)");
  int w2 = try_bind(port, 1, 1, 1, "our second worker");
  if (probe >= 0) close(probe);
  if (plain >= 0) close(plain);
  close(guard);
  if (w1 >= 0) close(w1);
  if (w2 >= 0) close(w2);
  return 0;
}
