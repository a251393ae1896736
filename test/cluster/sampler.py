#!/usr/bin/env python3
# The fast reader behind test/cluster/sampler.ts: opens one rtnetlink socket inside each named
# network namespace (a netlink socket stays bound to the namespace it was made in), then dumps the
# addresses of all of them back to back every PAUSE seconds and prints one line per sample:
#   S <epoch ms> <ns>=<addr>,<addr> <ns>=...      (global-scope addresses of the interface IFNAME)
# A dump costs well under a millisecond, so the reads of one sample are close to one instant
# (a child process per read costs ~40 ms on a loaded machine). Runs until killed.
# Usage: sampler.py PAUSE IFNAME NS...
import ctypes, os, socket, struct, sys, time

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
RTM_NEWADDR, RTM_GETADDR, NLMSG_DONE, NLMSG_ERROR = 20, 22, 3, 2
IFA_ADDRESS, IFA_LOCAL = 1, 2


def socket_in(ns):
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    fd = os.open(f'/run/netns/{ns}', os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f'setns {ns}')
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, 0))
        return s
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(fd)
        os.close(home)


def dump(s, seq):
    req = struct.pack('=IHHII', 16 + 8, RTM_GETADDR, 0x301, seq, 0) + struct.pack('=BBBBI', 0, 0, 0, 0, 0)
    s.send(req)
    out = []
    while True:
        data = s.recv(65536)
        off = 0
        while off + 16 <= len(data):
            ln, typ, _fl, sq, _pid = struct.unpack_from('=IHHII', data, off)
            if ln < 16:
                return out
            if typ == NLMSG_DONE or typ == NLMSG_ERROR:
                return out
            if typ == RTM_NEWADDR and sq == seq:
                fam, _plen, _flags, scope, index = struct.unpack_from('=BBBBI', data, off + 16)
                a = off + 24
                local = addr = None
                while a + 4 <= off + ln:
                    alen, atyp = struct.unpack_from('=HH', data, a)
                    if alen < 4:
                        break
                    payload = data[a + 4:a + alen]
                    if atyp == IFA_LOCAL:
                        local = payload
                    elif atyp == IFA_ADDRESS:
                        addr = payload
                    a += (alen + 3) & ~3
                raw = local or addr
                if raw is not None and scope == 0:
                    out.append((index, socket.inet_ntop(socket.AF_INET if fam == socket.AF_INET else socket.AF_INET6, raw)))
            off += (ln + 3) & ~3


def main():
    pause = float(sys.argv[1])
    ifname = sys.argv[2]
    names = sys.argv[3:]
    socks = {ns: socket_in(ns) for ns in names}
    # The interface's index in each namespace, once (it does not change while the lab lives).
    index = {}
    for ns in names:
        line = os.popen(f'ip -n {ns} -o link show dev {ifname}').read()
        index[ns] = int(line.split(':', 1)[0]) if line else -1
    seq = 0
    while True:
        at = time.time()
        parts = []
        for ns, s in socks.items():
            seq += 1
            try:
                addrs = [a for (i, a) in dump(s, seq) if i == index[ns]]
            except OSError:
                addrs = []
            parts.append(f'{ns}={",".join(addrs)}')
        sys.stdout.write(f'S {int(at * 1000)} {" ".join(parts)}\n')
        sys.stdout.flush()
        time.sleep(pause)


if __name__ == '__main__':
    main()
