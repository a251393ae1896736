// Typed wrappers of native/socket.cc: listening TCP sockets (SO_REUSEPORT and IP_FREEBIND only when
// asked), a bind-only probe of an address:port, closing an fd no server took, getsockname. Any thread (listener workers included); every call is a short
// synchronous system call that never blocks.
import { binding } from './addon.js';

/** Options of {@link listenTcp}. */
export interface ListenTcpOptions {
  /** A literal IPv4 or IPv6 address ("0.0.0.0", "::", "fe80::1%eth0"); never a host name. */
  host: string;
  /** 0..65535; 0 lets the kernel choose (read it back with {@link socketLocalAddress}). */
  port: number;
  /** listen(2) backlog, default 511; the kernel caps it at net.core.somaxconn. */
  backlog?: number;
  /** SO_REUSEPORT, default false: each worker listens on its own socket on the same ip:port. Any
   *  socket of the same uid that sets it may join: check with {@link probeBind} first. */
  reusePort?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND, default false: bind an address this node does not (yet) own
   *  (DuraVIPs only; any other address must be on the host). */
  freeBind?: boolean;
  /** IPV6_V6ONLY for IPv6 hosts, default true; ignored for IPv4. */
  v6Only?: boolean;
}

/** The local end of a socket, from getsockname(2). */
export interface SocketAddress {
  address: string;
  port: number;
  family: 4 | 6;
}

/**
 * Opens a listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR, plus SO_REUSEPORT and
 * IP_FREEBIND when asked) and returns its fd. Synchronous and short.
 *
 * Ownership: the caller owns the fd. Hand it to `net.Server.listen({ fd })`, after which the server
 * owns it and `server.close()` closes it; otherwise release it with {@link closeFd}. The fd is
 * per process, so it is valid in every thread, but only one owner may close it.
 *
 * Throws: a TypeError for a port outside 0..65535 or a bad option type; `ERR_INVALID_ADDRESS` for a
 * host that is not a literal address (no syscall made); `ENODEV` for an unknown IPv6 zone; otherwise
 * an error with the errno `code` and `syscall` (`EADDRINUSE` from bind when a socket without
 * SO_REUSEPORT holds the port, `EADDRNOTAVAIL` for a non-local address without freeBind, `EACCES`).
 * No fd is left open when it throws.
 */
export function listenTcp(opts: ListenTcpOptions): number {
  return binding.listenTcp(opts) as number;
}

/**
 * Binds host:port without SO_REUSEPORT and closes the socket again (it never listens, so no
 * connection can land on it): succeeds only when no other socket listens on an overlapping address
 * (the same one, or a wildcard on either side) of that port, whoever made it. Connections of an
 * earlier listener in TIME_WAIT do not count (SO_REUSEADDR). Throws as {@link listenTcp} does:
 * `EADDRINUSE`, `EADDRNOTAVAIL` (not on this host and no freeBind), `EACCES`; a TypeError for
 * reusePort. Synchronous and short.
 */
export function probeBind(opts: Omit<ListenTcpOptions, 'backlog'>): void {
  binding.probeBind(opts);
}

/**
 * Binds host:port with SO_REUSEPORT and without SO_REUSEADDR, never listening, and returns the fd:
 * while it is open every other bind of the address:port fails with EADDRINUSE (another vipmta's
 * {@link probeBind}, a plain listener) except SO_REUSEPORT sockets of our uid, such as our workers'.
 * It holds a port from the check until the workers listen. Close it with {@link closeFd}. Throws as
 * {@link listenTcp} does (EADDRINUSE also for a foreign connection in TIME_WAIT on the port).
 */
export function holdPort(opts: Omit<ListenTcpOptions, 'backlog' | 'reusePort'>): number {
  return binding.holdPort(opts) as number;
}

/** Closes an fd from {@link listenTcp} that no server took over. Throws `EBADF` if it is not open. */
export function closeFd(fd: number): void {
  binding.closeFd(fd);
}

/** getsockname(2) of an IP socket: the port the kernel chose for port 0, the bound address. */
export function socketLocalAddress(fd: number): SocketAddress {
  return binding.socketLocalAddress(fd) as SocketAddress;
}
