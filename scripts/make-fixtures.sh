#!/usr/bin/env bash
# scripts/make-fixtures.sh - regenerate flowtap's real-traffic capture fixtures.
#
#   sudo scripts/make-fixtures.sh [lo] [veth] [router] [nat]     (no argument: all four)
#
# Writes test/fixtures/<name>.pcap|.pcapng, <name>.expect.json (ground truth computed
# with tshark from that same file) and test/fixtures/README.md (FT_FIXTURES_OUT
# overrides the directory).  Every packet is generated here, inside network
# namespaces named ft-<role>-<pid> that this script creates and deletes (loopback and
# veth pairs between them); no traffic leaves them.  Structure (flows, ports, sizes,
# addresses, MACs) is fixed; timestamps, ISNs, ICMP ids, the NAT-chosen port of one
# flow and a few ACK/MLD/NDP frames vary from run to run.
#
# Needs root and the Debian packages: iproute2 tcpdump tshark (which pulls in
# wireshark-common: dumpcap, capinfos, mergecap) ethtool nftables iputils-ping python3.
# The kernel needs veth, tun/tap, nf_tables NAT; it does NOT need the 8021q module:
# VLAN sub-interfaces are emulated in user space (tap device + packet socket).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${FT_FIXTURES_OUT:-$ROOT/test/fixtures}
PY=${FT_PYTHON:-$(command -v python3 || true)}
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(lo veth router nat)

log() { printf '[make-fixtures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces, packet capture)"
for t in ip ss tcpdump tshark dumpcap capinfos mergecap ethtool nft ping "$PY"; do
  command -v "$t" >/dev/null 2>&1 || die "missing '$t': apt-get install -y iproute2 tcpdump tshark ethtool nftables iputils-ping python3"
done
for t in "${TARGETS[@]}"; do
  case $t in lo|veth|router|nat) ;; *) die "unknown fixture '$t' (lo veth router nat)";; esac
done

WORK=$(mktemp -d /tmp/ft-fixtures.XXXXXX)
declare -A LIVE=()   # pid -> name of every process we started and have not reaped yet
declare -A CAP=()    # capture name -> pid
NSS=()               # namespaces we created and have not deleted yet
BG_PID=
FIX=                 # fixture being made (prefix of $WORK/<fix>.* files)

cleanup() {
  local rc=$? pid ns
  set +e
  trap - EXIT INT TERM HUP
  # Only our own children: their pids cannot be reused before we reap them.
  for pid in "${!LIVE[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${!LIVE[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [[ $rc -eq 0 ]]; then rm -rf "$WORK"; else log "FAILED (exit $rc); logs kept in $WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

H=$WORK/fthelper.py
cat >"$H" <<'PYEOF'
#!/usr/bin/env python3
"""flowtap fixture helper (written out and run by scripts/make-fixtures.sh).

Traffic: small TCP/UDP servers and clients with exact, known payload sizes, and a
user-space 802.1Q sub-interface (tap <-> tagged frames on a packet socket), since
the kernel may lack CONFIG_VLAN_8021Q.  Ground truth: `topo` records the
namespaces' interfaces/addresses, `expect` computes <fixture>.expect.json from the
capture with tshark, `readme` writes test/fixtures/README.md.

TCP wire protocol (HTTP/1.1-like, readable in Wireshark):
  request : "POST /<resp_len> HTTP/1.1\\r\\nHost: fixture\\r\\nContent-Length: <req_len>\\r\\n"
            ["Connection: close\\r\\n"] "\\r\\n" + req_len body bytes
  response: "HTTP/1.1 200 OK\\r\\nContent-Length: <resp_len>\\r\\n\\r\\n" + resp_len body bytes
The server closes after the request carrying "Connection: close" (the last round).
"""
import argparse
import collections
import fcntl
import glob
import hashlib
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

PATTERN = b"flowtap fixture payload 0123456789abcdefghijklmnopqrstuvwxyz\n"
TIMEOUT = 20.0


def body(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def log_flow(rec):
    path = os.environ.get("FT_FLOWLOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(65536, n - len(buf)))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def recv_head(s):
    buf = bytearray()
    while not buf.endswith(b"\r\n\r\n"):
        c = s.recv(1)
        if not c:
            if not buf:
                return None
            raise EOFError("peer closed inside header")
        buf += c
    return buf.decode("ascii")


def header(head, name):
    for line in head.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            if k.strip().lower() == name.lower():
                return v.strip()
    return None


# ---------------------------------------------------------------- TCP -------
def serve_conn(c, peer):
    c.settimeout(TIMEOUT)
    while True:
        head = recv_head(c)
        if head is None:
            break
        resp_len = int(head.split(" ")[1].lstrip("/"))
        req_len = int(header(head, "Content-Length") or 0)
        recv_exact(c, req_len)
        c.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % resp_len).encode() + body(resp_len))
        if (header(head, "Connection") or "").lower() == "close":
            break
    c.close()
    print("served %s" % (peer,), flush=True)


def tcp_server(a):
    ls = socket.socket(family(a.bind), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(8)
    ls.settimeout(TIMEOUT)
    print("READY", flush=True)
    threads = []
    for _ in range(a.conns):
        c, peer = ls.accept()
        t = threading.Thread(target=serve_conn, args=(c, peer))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    ls.close()


def tcp_client(a):
    s = socket.socket(family(a.dst), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(TIMEOUT)
    s.bind((a.src, a.sport))
    rec = {"label": a.label, "proto": "tcp", "client": [a.src, a.sport], "server": [a.dst, a.dport],
           "rounds": a.rounds, "req_body": a.req, "resp_body": a.resp}
    if a.refused:
        try:
            s.connect((a.dst, a.dport))
        except ConnectionRefusedError:
            rec.update(result="refused", payload_c2s=0, payload_s2c=0)
            log_flow(rec)
            print("refused as expected")
            return
        sys.exit("connection to a closed port was accepted")
    s.connect((a.dst, a.dport))
    sent = got_total = 0
    for r in range(a.rounds):
        last = r == a.rounds - 1
        req = ("POST /%d HTTP/1.1\r\nHost: fixture\r\nContent-Length: %d\r\n%s\r\n"
               % (a.resp, a.req, "Connection: close\r\n" if last else "")).encode() + body(a.req)
        s.sendall(req)
        sent += len(req)
        head = recv_head(s)
        n = int(header(head, "Content-Length"))
        got = recv_exact(s, n)
        got_total += len(head) + n
        if n != a.resp or got != body(a.resp):
            sys.exit("bad response: %d bytes, wanted %d" % (n, a.resp))
        if a.pause and not last:
            time.sleep(a.pause)
    if s.recv(1) != b"":  # wait for the server's FIN, then close
        sys.exit("unexpected data after last response")
    s.close()
    rec.update(result="ok", payload_c2s=sent, payload_s2c=got_total)
    log_flow(rec)
    print("ok %d rounds, %d+%d bytes each" % (a.rounds, a.req, a.resp))


# ---------------------------------------------------------------- UDP -------
def udp_server(a):
    s = socket.socket(family(a.bind), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.settimeout(TIMEOUT)
    print("READY", flush=True)
    for _ in range(a.count):
        _data, peer = s.recvfrom(65535)
        s.sendto(body(a.resp), peer)
    s.close()


def udp_client(a):
    s = socket.socket(family(a.dst), socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT if not a.closed else 3.0)
    s.bind((a.src, a.sport))
    s.connect((a.dst, a.dport))
    rec = {"label": a.label, "proto": "udp", "client": [a.src, a.sport], "server": [a.dst, a.dport],
           "count": a.count, "req_body": a.req, "resp_body": a.resp}
    for i in range(a.count):
        s.send(body(a.req))
        try:
            data = s.recv(65535)
        except ConnectionRefusedError:
            if a.closed:
                rec.update(result="port-unreachable", payload_c2s=a.req, payload_s2c=0)
                log_flow(rec)
                print("port unreachable as expected")
                return
            raise
        if a.closed:
            sys.exit("closed port answered")
        if data != body(a.resp):
            sys.exit("bad udp response length %d" % len(data))
        if a.pause and i < a.count - 1:
            time.sleep(a.pause)
    rec.update(result="ok", payload_c2s=a.count * a.req, payload_s2c=a.count * a.resp)
    log_flow(rec)
    print("ok %d datagrams" % a.count)


# ------------------------------------------------- user-space 802.1Q --------
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
PACKET_OUTGOING = 4


def vlan_bridge(a):
    """Frames the kernel sends on tap a.tap leave a.iface tagged with VLAN a.vid;
    frames arriving on a.iface tagged a.vid are untagged and handed to the tap."""
    tap = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", a.tap.encode(), IFF_TAP | IFF_NO_PI))
    ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    ps.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    ps.bind((a.iface, 0))
    tag = struct.pack("!HH", 0x8100, a.vid)
    print("READY", flush=True)
    while True:
        r, _, _ = select.select([tap, ps], [], [])
        if tap in r:
            frame = os.read(tap, 65536)
            ps.send(frame[:12] + tag + frame[12:])
        if ps in r:
            data, anc, _flags, addr = ps.recvmsg(65536, socket.CMSG_SPACE(20))
            if addr[2] == PACKET_OUTGOING:
                continue
            vid = None
            for level, typ, cdata in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 20:
                    status, _l, _s, _m, _n, tci, _tpid = struct.unpack("IIIHHHH", cdata[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        vid = tci & 0x0FFF
            if vid is None and data[12:14] == b"\x81\x00":
                vid = struct.unpack("!H", data[14:16])[0] & 0x0FFF
                data = data[:12] + data[16:]
            if vid == a.vid:
                try:
                    os.write(tap, data)
                except OSError:
                    pass  # tap not up yet: drop, as a down interface would


# ------------------------------------------------------------ topology ------
def topo(a):
    out = {}
    for arg in a.netns:
        ns, real = arg.split("=", 1) if "=" in arg else (arg, arg)
        links = json.loads(subprocess.check_output(["ip", "-j", "-n", real, "addr", "show"]))
        ifaces = {}
        for l in links:
            ifaces[l["ifname"]] = {
                "ifindex": l["ifindex"],
                "mac": l.get("address"),
                "kind": "loopback" if l["ifname"] == "lo" else None,
                "addrs": ["%s/%d" % (x["local"], x["prefixlen"]) for x in l.get("addr_info", [])],
            }
        for name, d in ifaces.items():
            if d["kind"] is None:
                info = json.loads(subprocess.check_output(["ip", "-j", "-d", "-n", real, "link", "show", "dev", name]))[0]
                d["kind"] = (info.get("linkinfo") or {}).get("info_kind") or "unknown"
        out[ns] = {"interfaces": ifaces,
                   "addrs": sorted({x.split("/")[0] for d in ifaces.values() for x in d["addrs"]})}
    json.dump(out, open(a.out, "w"), indent=1, sort_keys=True)


# ------------------------------------------------------- capture files ------
LINKTYPES = {0: "NULL", 1: "EN10MB", 101: "RAW", 113: "LINUX_SLL", 276: "LINUX_SLL2"}


def file_format(path):
    d = open(path, "rb").read()
    magic = struct.unpack_from("<I", d, 0)[0]
    res = {"sha1": hashlib.sha1(d).hexdigest(), "size_bytes": len(d)}
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        _m, vmaj, vmin, _tz, _sf, snap, lt = struct.unpack_from("<IHHiIII", d, 0)
        res.update(container="pcap", ts_resolution="ns" if magic == 0xA1B23C4D else "us", byte_order="little",
                   version="%d.%d" % (vmaj, vmin), magic="0x%08x" % magic,
                   interfaces=[{"id": 0, "linktype": lt, "linktype_name": LINKTYPES.get(lt, str(lt)), "snaplen": snap}])
        return res
    if magic != 0x0A0D0D0A:
        raise SystemExit("%s: unknown magic 0x%08x" % (path, magic))
    assert struct.unpack_from("<I", d, 8)[0] == 0x1A2B3C4D, "big-endian pcapng not expected"
    res.update(container="pcapng", byte_order="little", interfaces=[], blocks=collections.Counter())
    names = {1: "IDB", 6: "EPB", 5: "ISB", 0x0A0D0D0A: "SHB", 3: "SPB", 4: "NRB"}
    off = 0
    last_ts = {}
    monotonic = True
    while off < len(d):
        btype, blen = struct.unpack_from("<II", d, off)
        res["blocks"][names.get(btype, hex(btype))] += 1
        if btype == 1:
            lt, _r, snap = struct.unpack_from("<HHI", d, off + 8)
            idb = {"id": len(res["interfaces"]), "linktype": lt, "linktype_name": LINKTYPES.get(lt, str(lt)),
                   "snaplen": snap, "if_tsresol": 6}
            o = off + 16
            while o < off + blen - 4:
                code, olen = struct.unpack_from("<HH", d, o)
                val = d[o + 4:o + 4 + olen]
                if code == 0:
                    break
                if code == 2:
                    idb["if_name"] = val.decode()
                elif code == 3:
                    idb["if_description"] = val.decode()
                elif code == 9:
                    idb["if_tsresol"] = val[0]
                elif code == 12:
                    idb["if_os"] = val.decode()
                o += 4 + ((olen + 3) & ~3)
            res["interfaces"].append(idb)
        elif btype == 6:
            iid, hi, lo = struct.unpack_from("<III", d, off + 8)
            ts = (hi << 32) | lo
            if iid in last_ts and ts < last_ts[iid]:
                monotonic = False
            last_ts[iid] = ts
        off += blen
    res["blocks"] = dict(res["blocks"])
    res["ts_resolution"] = ",".join(sorted({{6: "us", 9: "ns"}.get(i["if_tsresol"], str(i["if_tsresol"])) for i in res["interfaces"]}))
    res["per_interface_timestamps_monotonic"] = monotonic
    return res


def capinfos(path):
    out = subprocess.run(["capinfos", "-M", path], capture_output=True, text=True)
    info = {"rc": out.returncode}
    for line in out.stdout.splitlines():
        m = re.match(r"^(File type|File encapsulation|File timestamp precision|Packet size limit|Number of packets|Number of interfaces in file|Capture duration):\s+(.*)$", line)
        if m:
            info[m.group(1).lower().replace(" ", "_")] = m.group(2).strip()
    return info


# --------------------------------------------------------------- expect -----
FIELDS = ["frame.number", "frame.len", "frame.cap_len", "frame.time_relative", "frame.time_epoch",
          "frame.interface_id", "frame.protocols", "sll.pkttype", "sll.ifindex", "vlan.id",
          "ip.src", "ip.dst", "ip.len", "ipv6.src", "ipv6.dst", "ipv6.plen",
          "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.len", "tcp.flags.syn", "tcp.flags.ack",
          "tcp.flags.fin", "tcp.flags.reset", "tcp.seq_raw",
          "udp.stream", "udp.srcport", "udp.dstport", "udp.length",
          "icmp.type", "icmp.ident", "icmpv6.type", "icmpv6.echo.identifier"]
SLL_PKTTYPE = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}


def tshark_frames(path):
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=|"]
    for f in FIELDS:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("tshark failed on %s: %s" % (path, p.stderr))
    frames = []
    for line in p.stdout.rstrip("\n").split("\n"):
        vals = line.split("\t")
        assert len(vals) == len(FIELDS), line
        frames.append({k: (v.split("|") if v != "" else []) for k, v in zip(FIELDS, vals)})
    return frames


def first(fr, k, conv=None):
    v = fr[k]
    if not v:
        return None
    return conv(v[0]) if conv else v[0]


def conv_table(path):
    p = subprocess.run(["tshark", "-n", "-r", path, "-q", "-z", "conv,tcp", "-z", "conv,udp"],
                       capture_output=True, text=True)
    rows = []
    proto = None
    rx = re.compile(r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+)\s+(\d+) (bytes|kB|MB)\s+(\d+)\s+(\d+) (bytes|kB|MB)"
                    r"\s+(\d+)\s+(\d+) (bytes|kB|MB)\s+([\d.]+)\s+([\d.]+)\s*$")
    for line in p.stdout.splitlines():
        if line.startswith("TCP Conversations"):
            proto = "tcp"
        elif line.startswith("UDP Conversations"):
            proto = "udp"
        m = rx.match(line)
        if m:
            g = m.groups()
            rows.append({"proto": proto, "a_addr": g[0], "a_port": int(g[1]), "b_addr": g[2], "b_port": int(g[3]),
                         "frames_b_to_a": int(g[4]), "bytes_b_to_a": [int(g[5]), g[6]],
                         "frames_a_to_b": int(g[7]), "bytes_a_to_b": [int(g[8]), g[9]],
                         "frames": int(g[10]), "bytes": [int(g[11]), g[12]], "rel_start": float(g[13])})
    return rows


def bytes_match(n, shown):
    v, unit = shown
    if unit == "bytes":
        return n == v
    div = 1000 if unit == "kB" else 1000000
    return n // div == v or round(n / div) == v or n // (1024 if unit == "kB" else 1048576) == v


def ranges(nums):
    out = []
    for n in sorted(nums):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in out)


def new_side():
    return {"frames": 0, "bytes": 0, "caplen_bytes": 0, "l3_bytes": 0, "payload_bytes": 0,
            "syn": 0, "fin": 0, "rst": 0, "vlan_ids": collections.Counter(), "interface_ids": collections.Counter(),
            "sll_pkttypes": collections.Counter(), "sll_ifindexes": collections.Counter()}


def expect(a):
    meta = json.load(open(a.meta))
    topo_d = json.load(open(a.topo)) if a.topo else {}
    flows = [json.loads(l) for l in open(a.flows)] if a.flows and os.path.exists(a.flows) else []
    fmt = file_format(a.pcap)
    frames = tshark_frames(a.pcap)
    addr_ns = {}
    for ns, d in topo_d.items():
        for ad in d["addrs"]:
            addr_ns.setdefault(ad, set()).add(ns)
    # on loopback-only fixtures every namespace has 127.0.0.1/::1; the capture ns wins
    cap_ns = meta.get("capture_namespace")

    def ns_of(ad):
        s = addr_ns.get(ad, set())
        if cap_ns in s:
            return cap_ns
        return sorted(s)[0] if s else None

    summary = collections.Counter()
    max_len = 0
    pkttypes = collections.Counter()
    ifaces = collections.Counter()
    vlans = collections.Counter()
    convs = collections.OrderedDict()
    echo = collections.OrderedDict()
    for fr in frames:
        num = int(fr["frame.number"][0])
        flen = int(fr["frame.len"][0])
        clen = int(fr["frame.cap_len"][0])
        protos = fr["frame.protocols"][0].split(":")
        for p in ("eth", "vlan", "sll", "arp", "ip", "ipv6", "icmp", "icmpv6", "tcp", "udp"):
            if p in protos:
                summary[p] += 1
        if clen < flen:
            summary["truncated"] += 1
        max_len = max(max_len, flen)
        if fr["sll.pkttype"]:
            pkttypes[SLL_PKTTYPE.get(int(fr["sll.pkttype"][0]), fr["sll.pkttype"][0])] += 1
        if fr["frame.interface_id"]:
            ifaces[int(fr["frame.interface_id"][0])] += 1
        for v in fr["vlan.id"]:
            vlans[int(v)] += 1
        ip_layers = sum(1 for p in protos if p in ("ip", "ipv6"))
        if fr["ip.src"]:
            src, dst, l3 = fr["ip.src"][0], fr["ip.dst"][0], int(fr["ip.len"][0])
            ipver = "ipv4"
        elif fr["ipv6.src"]:
            src, dst, l3 = fr["ipv6.src"][0], fr["ipv6.dst"][0], int(fr["ipv6.plen"][0]) + 40
            ipver = "ipv6"
        else:
            src = dst = None
        # ICMP echo grouping (request 8/128, reply 0/129)
        it = first(fr, "icmp.type", int) if "icmp" in protos else first(fr, "icmpv6.type", int)
        if it in (0, 8, 128, 129) and ip_layers == 1:
            ident = first(fr, "icmp.ident" if ipver == "ipv4" else "icmpv6.echo.identifier", lambda x: int(x, 0))
            key = (ipver, tuple(sorted((src, dst))), ident)
            e = echo.setdefault(key, {"ip_version": ipver, "addrs": list(key[1]), "ident": ident,
                                      "requests": 0, "replies": 0, "frames": 0, "bytes": 0,
                                      "first_frame": num, "requester": src})
            e["requests" if it in (8, 128) else "replies"] += 1
            e["frames"] += 1
            e["bytes"] += flen
            e["last_frame"] = num
        icmp_pos = min([protos.index(p) for p in ("icmp", "icmpv6") if p in protos] or [99])
        for proto in ("tcp", "udp"):
            if proto not in protos or protos.index(proto) > icmp_pos or not fr[proto + ".stream"]:
                continue  # TCP/UDP header quoted in an ICMP error: not a conversation frame
            assert ip_layers == 1, "frame %d: tunnels not expected in these fixtures" % num
            stream = int(fr[proto + ".stream"][0])
            sp, dp = int(fr[proto + ".srcport"][0]), int(fr[proto + ".dstport"][0])
            key = (proto, stream)
            c = convs.get(key)
            if c is None:
                c = convs[key] = {"proto": proto, "stream": stream, "ip_version": ipver,
                                  "a_addr": src, "a_port": sp, "b_addr": dst, "b_port": dp,
                                  "a_to_b": new_side(), "b_to_a": new_side(), "frame_numbers": [],
                                  "rel": [], "epoch": [], "syn_seq_raw": None}
            if (src, sp, dst, dp) == (c["a_addr"], c["a_port"], c["b_addr"], c["b_port"]):
                side = c["a_to_b"]
            else:
                assert (dst, dp, src, sp) == (c["a_addr"], c["a_port"], c["b_addr"], c["b_port"]), num
                side = c["b_to_a"]
            side["frames"] += 1
            side["bytes"] += flen
            side["caplen_bytes"] += clen
            side["l3_bytes"] += l3
            if proto == "tcp":
                side["payload_bytes"] += int(fr["tcp.len"][0])
                syn, ack = fr["tcp.flags.syn"][0] in ("1", "True"), fr["tcp.flags.ack"][0] in ("1", "True")
                side["syn"] += syn
                side["fin"] += fr["tcp.flags.fin"][0] in ("1", "True")
                side["rst"] += fr["tcp.flags.reset"][0] in ("1", "True")
                if syn and not ack and c["syn_seq_raw"] is None:
                    c["syn_seq_raw"] = int(fr["tcp.seq_raw"][0])
            else:
                side["payload_bytes"] += int(fr["udp.length"][0]) - 8
            for v in fr["vlan.id"]:
                side["vlan_ids"][int(v)] += 1
            if fr["frame.interface_id"]:
                side["interface_ids"][int(fr["frame.interface_id"][0])] += 1
            if fr["sll.pkttype"]:
                side["sll_pkttypes"][SLL_PKTTYPE.get(int(fr["sll.pkttype"][0]))] += 1
            if fr["sll.ifindex"]:
                side["sll_ifindexes"][int(fr["sll.ifindex"][0])] += 1
            c["frame_numbers"].append(num)
            c["rel"].append(float(fr["frame.time_relative"][0]))
            c["epoch"].append(fr["frame.time_epoch"][0])

    # ---- conversations: finalize, classify, match flows
    ifname_of_index = {}
    cap_if = topo_d.get(cap_ns, {}).get("interfaces", {}) if cap_ns else {}
    for name, d in cap_if.items():
        ifname_of_index[d["ifindex"]] = name
    idb_names = {i["id"]: i.get("if_name") for i in fmt["interfaces"]}
    out_convs = []
    for c in convs.values():
        for side in ("a_to_b", "b_to_a"):
            s = c[side]
            s["vlan_ids"] = {str(k): v for k, v in sorted(s["vlan_ids"].items())}
            s["interface_ids"] = {str(k): v for k, v in sorted(s["interface_ids"].items())}
            s["sll_pkttypes"] = dict(sorted(s["sll_pkttypes"].items()))
            s["sll_ifindexes"] = {"%d:%s" % (k, ifname_of_index.get(k, "?")): v for k, v in sorted(s["sll_ifindexes"].items())}
        a_ns, b_ns = ns_of(c["a_addr"]), ns_of(c["b_addr"])
        if cap_ns is None:
            cls = None
        elif a_ns == cap_ns and b_ns == cap_ns:
            cls = "local"
        elif b_ns == cap_ns:
            cls = "inbound"
        elif a_ns == cap_ns:
            cls = "outbound"
        else:
            cls = "forwarded"
        ab, ba = c["a_to_b"], c["b_to_a"]
        idx = sorted(range(len(c["rel"])), key=lambda i: c["rel"][i])
        o = collections.OrderedDict()
        for k in ("proto", "stream", "ip_version", "a_addr", "a_port", "b_addr", "b_port"):
            o[k] = c[k]
        o["a_namespace"], o["b_namespace"], o["class"] = a_ns, b_ns, cls
        o["frames"] = ab["frames"] + ba["frames"]
        o["bytes"] = ab["bytes"] + ba["bytes"]
        o["frames_a_to_b"], o["bytes_a_to_b"] = ab["frames"], ab["bytes"]
        o["frames_b_to_a"], o["bytes_b_to_a"] = ba["frames"], ba["bytes"]
        o["caplen_bytes"] = ab["caplen_bytes"] + ba["caplen_bytes"]
        o["l3_bytes"] = ab["l3_bytes"] + ba["l3_bytes"]
        o["l3_bytes_a_to_b"], o["l3_bytes_b_to_a"] = ab["l3_bytes"], ba["l3_bytes"]
        o["payload_bytes_a_to_b"], o["payload_bytes_b_to_a"] = ab["payload_bytes"], ba["payload_bytes"]
        o["first_frame"], o["last_frame"] = c["frame_numbers"][0], c["frame_numbers"][-1]
        o["frame_numbers"] = ranges(c["frame_numbers"])
        o["rel_start"], o["rel_end"] = c["rel"][idx[0]], c["rel"][idx[-1]]
        o["duration"] = round(o["rel_end"] - o["rel_start"], 9)
        o["first_epoch"], o["last_epoch"] = c["epoch"][idx[0]], c["epoch"][idx[-1]]
        if c["proto"] == "tcp":
            o["tcp_flags"] = {"a_to_b": {k: ab[k] for k in ("syn", "fin", "rst")},
                              "b_to_a": {k: ba[k] for k in ("syn", "fin", "rst")}}
            o["syn_seq_raw"] = c["syn_seq_raw"]
        link = {}
        for side, s in (("a_to_b", ab), ("b_to_a", ba)):
            l = {}
            if s["vlan_ids"]:
                l["vlan_ids"] = s["vlan_ids"]
            if fmt["container"] == "pcapng":
                l["interfaces"] = {"%s:%s" % (k, idb_names.get(int(k))): v for k, v in s["interface_ids"].items()}
            if s["sll_pkttypes"]:
                l["sll_pkttypes"] = s["sll_pkttypes"]
            if s["sll_ifindexes"]:
                l["sll_ifindexes"] = s["sll_ifindexes"]
            link[side] = l
        o["link"] = link
        o["label"] = None
        out_convs.append(o)

    # NAT pairing (router-nat): same TCP ISN / same UDP server+client port, one side from the NAT address
    nat = meta.get("nat")
    nat_pairs = []
    if nat:
        outside = set(nat["outside_addrs"])
        for post in out_convs:
            if post["a_addr"] not in outside:
                continue
            cands = [pre for pre in out_convs if pre is not post and pre["proto"] == post["proto"]
                     and pre["b_addr"] == post["b_addr"] and pre["b_port"] == post["b_port"]
                     and pre["a_addr"] not in outside]
            if post["proto"] == "tcp":
                cands = [p for p in cands if p["syn_seq_raw"] is not None and p["syn_seq_raw"] == post["syn_seq_raw"]]
            else:
                cands = [p for p in cands if p["a_port"] == post["a_port"]]
            if len(cands) != 1:
                raise SystemExit("NAT pairing failed for %s stream %d (%d candidates)" % (post["proto"], post["stream"], len(cands)))
            pre = cands[0]
            post["nat"] = {"side": "post", "pre_stream": pre["stream"]}
            pre["nat"] = {"side": "pre", "post_stream": post["stream"]}
            nat_pairs.append({"proto": post["proto"], "pre_stream": pre["stream"], "post_stream": post["stream"],
                              "inside": "%s:%d" % (pre["a_addr"], pre["a_port"]),
                              "translated": "%s:%d" % (post["a_addr"], post["a_port"]),
                              "server": "%s:%d" % (post["b_addr"], post["b_port"]),
                              "port_preserved": pre["a_port"] == post["a_port"]})

    copies = meta.get("copies", {})
    problems = []
    flow_out = []
    for f in flows:
        cl, sv = f["client"], f["server"]
        if f["proto"] == "icmp":
            groups = [e for e in echo.values() if e["ip_version"] == ("ipv6" if ":" in cl[0] else "ipv4")
                      and sv[0] in e["addrs"]]
            ff = dict(f)
            ff["echo_groups"] = [{"addrs": e["addrs"], "ident": e["ident"], "requests": e["requests"], "replies": e["replies"]}
                                 for e in groups]
            if not groups or sum(e["requests"] for e in groups) < f["count"]:
                problems.append("ping %s: echo requests missing" % f["label"])
            flow_out.append(ff)
            continue
        matches = [o for o in out_convs if o["proto"] == f["proto"] and [o["a_addr"], o["a_port"]] == cl
                   and [o["b_addr"], o["b_port"]] == sv]
        if len(matches) != 1:
            problems.append("flow %s: %d conversations match" % (f["label"], len(matches)))
            continue
        m = [matches[0]]
        if "nat" in matches[0]:
            m += [o for o in out_convs if o["proto"] == f["proto"] and o["stream"] == matches[0]["nat"]["post_stream"]]
        ff = dict(f)
        ff["streams"] = [o["stream"] for o in m]
        for o in m:
            o["label"] = f["label"]
            o["flow_result"] = f["result"]
            n = copies.get(o["class"], 1)
            o["copies_per_packet"] = n
            want = (n * f["payload_c2s"], n * f["payload_s2c"])
            have = (o["payload_bytes_a_to_b"], o["payload_bytes_b_to_a"])
            if want != have:
                problems.append("flow %s stream %d: payload %s, expected %s (copies %d)" % (f["label"], o["stream"], have, want, n))
        flow_out.append(ff)
    for o in out_convs:
        if o["label"] is None:
            problems.append("conversation %s stream %d %s:%d->%s:%d has no flow label" % (
                o["proto"], o["stream"], o["a_addr"], o["a_port"], o["b_addr"], o["b_port"]))

    # ---- cross-check with tshark's own conversation table
    table = conv_table(a.pcap)
    check = "ok"
    if len(table) != len(out_convs):
        check = "row count %d != %d" % (len(table), len(out_convs))
    for o in out_convs:
        rows = [r for r in table if r["proto"] == o["proto"] and (r["a_addr"], r["a_port"], r["b_addr"], r["b_port"]) ==
                (o["a_addr"], o["a_port"], o["b_addr"], o["b_port"]) and r["frames"] == o["frames"]]
        if len(rows) != 1:
            check = "no unique row for %s stream %d" % (o["proto"], o["stream"])
            continue
        r = rows[0]
        if not (r["frames_a_to_b"] == o["frames_a_to_b"] and r["frames_b_to_a"] == o["frames_b_to_a"]
                and bytes_match(o["bytes"], r["bytes"]) and bytes_match(o["bytes_a_to_b"], r["bytes_a_to_b"])
                and bytes_match(o["bytes_b_to_a"], r["bytes_b_to_a"]) and abs(r["rel_start"] - o["rel_start"]) < 1e-6):
            check = "mismatch for %s stream %d: %s" % (o["proto"], o["stream"], r)
    if check != "ok":
        problems.append("conversation table check: " + check)

    res = collections.OrderedDict()
    res["file"] = os.path.basename(a.pcap)
    res["description"] = meta["description"]
    commands = []
    if a.cmds and os.path.exists(a.cmds):
        lines = [l.strip() for l in open(a.cmds) if l.strip()]
        names = {os.path.basename(a.pcap)}
        while True:
            sel = [l for l in lines if any(re.search(r"(^|[\s/])" + re.escape(n) + r"(\s|$)", l) for n in names)]
            more = {w for l in sel for w in l.split() if re.search(r"\.pcap(ng)?$", w)} - names
            if not more:
                break
            names |= more
        commands = sel
    res["generator"] = {"script": "scripts/make-fixtures.sh",
                        "tshark": subprocess.check_output(["tshark", "-v"], text=True, stderr=subprocess.DEVNULL).splitlines()[0],
                        "tcpdump": subprocess.run(["tcpdump", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
                        "kernel": os.uname().release,
                        "commands": commands}
    res["sha1"] = fmt.pop("sha1")
    res["size_bytes"] = fmt.pop("size_bytes")
    for i in fmt["interfaces"]:
        if i.get("if_name") and cap_if.get(i["if_name"]):
            i["namespace"] = cap_ns
            i["ifindex"] = cap_if[i["if_name"]]["ifindex"]
    res["format"] = fmt
    res["capinfos"] = capinfos(a.pcap)
    res["frames_total"] = len(frames)
    res["frame_summary"] = {"by_protocol": dict(sorted(summary.items())), "max_frame_len": max_len,
                            "vlan_tagged_by_id": {str(k): v for k, v in sorted(vlans.items())},
                            "by_interface_id": {str(k): v for k, v in sorted(ifaces.items())},
                            "sll_pkttypes": dict(sorted(pkttypes.items()))}
    res["semantics"] = {
        "conversation_key": "tcp.stream / udp.stream as tshark 4.0 assigns them (5-tuple; VLAN id and interface not part of the key)",
        "a_side": "A = source IP/port of the first frame (file order) of the conversation",
        "bytes": "sum of frame.len (on-wire length incl. link-layer header: Ethernet[+802.1Q], SLL/SLL2), not caplen",
        "caplen_bytes": "sum of frame.cap_len (differs from bytes only for snaplen-truncated frames)",
        "l3_bytes": "sum of ip.len (IPv4 total length) or ipv6.plen + 40",
        "payload_bytes": "TCP: sum of tcp.len; UDP: sum of udp.length - 8",
        "icmp_errors": "TCP/UDP headers quoted inside ICMP/ICMPv6 errors are not counted",
        "class": "relative to capture_namespace: local (both ends in it), inbound (B end in it), outbound (A end in it), forwarded (neither); by address only (a NAT-translated conversation whose A side is the router's own address is 'outbound')",
        "copies_per_packet": "how many times each packet of the flow appears in the file (2 for forwarded flows captured on both router interfaces or on 'any')",
        "rel_start": "min frame.time_relative over the conversation's frames",
    }
    res["topology"] = {"capture_namespace": cap_ns, "capture": meta.get("capture"), "links": meta.get("links"),
                       "roles": meta.get("roles"), "namespaces": topo_d}
    if nat:
        res["topology"]["nat"] = nat
    res["tcp_conversations"] = sum(1 for o in out_convs if o["proto"] == "tcp")
    res["udp_conversations"] = sum(1 for o in out_convs if o["proto"] == "udp")
    res["check_vs_conv_table"] = check
    res["conversations"] = out_convs
    if nat:
        res["nat_pairs"] = nat_pairs
    res["icmp_echo"] = list(echo.values())
    res["flows"] = flow_out
    res["problems"] = problems
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(3)


# --------------------------------------------------------------- readme -----
def readme(a):
    docs = README_DOCS
    rows, sections = [], []
    for name in docs["order"]:
        p = os.path.join(a.dir, name + ".expect.json")
        if not os.path.exists(p):
            continue
        e = json.load(open(p))
        lts = "+".join(sorted({"%d %s" % (i["linktype"], i["linktype_name"]) for i in e["format"]["interfaces"]}))
        fmt = e["format"]["container"] + " " + e["format"]["ts_resolution"]
        if e["format"]["container"] == "pcapng":
            fmt += ", %d IDB" % len(e["format"]["interfaces"])
        snaps = sorted({i["snaplen"] for i in e["format"]["interfaces"]})
        rows.append("| `%s` | %d | %s | %s | %s | %d | %d | %d | %d | %d |" % (
            name, e["size_bytes"], fmt, lts, "/".join(map(str, snaps)), e["frames_total"], e["frame_summary"]["max_frame_len"],
            e["tcp_conversations"], e["udp_conversations"], e["frame_summary"]["by_protocol"].get("truncated", 0)))
        d = docs["files"][name]
        sp = e["frame_summary"]
        extra = []
        if sp["sll_pkttypes"]:
            extra.append("SLL packet types: " + ", ".join("%s %d" % kv for kv in sp["sll_pkttypes"].items()))
        if sp["vlan_tagged_by_id"]:
            extra.append("802.1Q-tagged frames: " + ", ".join("VLAN %s: %d" % kv for kv in sp["vlan_tagged_by_id"].items()))
        bp = sp["by_protocol"]
        extra.append("frames with ARP %d, ICMP %d, ICMPv6 %d, TCP %d, UDP %d" % tuple(bp.get(k, 0) for k in ("arp", "icmp", "icmpv6", "tcp", "udp")))
        labels = ", ".join("`%s` (%s stream %d, %s%s: %d frames, %d bytes)" % (
            o["label"], o["proto"], o["stream"], o["class"], "/%s-NAT" % o["nat"]["side"] if o.get("nat") else "",
            o["frames"], o["bytes"]) for o in e["conversations"])
        cmds = "; ".join("`%s`" % c for c in e["generator"]["commands"])
        sections.append(
            "### `%s`\n\n%s\n\n- Made by: %s; %s\n- tshark says: %d frames; %s; %d TCP + %d UDP conversations "
            "(check against `-z conv`: %s): %s.\n" % (
                name, d["what"], cmds, d["how"], e["frames_total"], "; ".join(extra), e["tcp_conversations"],
                e["udp_conversations"], e["check_vs_conv_table"], labels))
    txt = docs["intro"] + "\n\n| file | size (bytes) | format | link type | snaplen | frames | max frame.len | TCP convs | UDP convs | truncated frames |\n|---|---|---|---|---|---|---|---|---|---|\n"
    txt += "\n".join(rows) + "\n\n" + docs["middle"] + "\n\n" + "\n".join(sections)
    open(os.path.join(a.dir, "README.md"), "w").write(txt)


README_DOCS = {
    "order": ["lo-tcp-udp.pcap", "veth-ethernet.pcapng", "router-ifaces.pcapng", "router-any.pcap",
              "router-any-sll2.pcap", "router-nat.pcap"],
    "intro": """# Real-traffic fixtures

Captures of traffic generated on purpose, with known flows, made by `scripts/make-fixtures.sh`
(this file is written by that script too: edit the script, not this file). Every packet was
sent between network namespaces that the script creates and deletes (named
`ft-<role>-<pid>`; the files and JSON use the role names `ft-lo`, `ft-ea`, `ft-eb`, `ft-cli`,
`ft-rtr`, `ft-srv`); nothing left the machine. Addresses are private (10.x, ULA `fd00::/8`, loopback) and MACs are fixed
(`02:00:00:...`).

Regenerate (root, Debian 12; ~1 minute):

    apt-get install -y iproute2 tcpdump tshark ethtool nftables iputils-ping python3
    sudo scripts/make-fixtures.sh              # all; or name some of: lo veth router nat

The structure is reproducible (flows, ports, payload sizes, addresses, MACs, link types);
timestamps, TCP ISNs, ICMP ids, the NAT-chosen port of `nat-tcp4-b` and the number of pure
ACKs / MLD / NDP frames vary from run to run, so every `.pcap*` must be committed together
with the `.expect.json` made from it (`sha1` in the JSON ties them). The kernel used here has
no 802.1Q module, so the script emulates the VLAN sub-interfaces in user space (a tap device
whose frames are tagged/untagged by a small packet-socket bridge); the frames on the veth are
real 802.1Q frames.""",
    "middle": """## `<file>.expect.json`

Computed by the script from the committed file with tshark 4.0 (`tshark -T fields` per frame,
aggregated in Python) and cross-checked against `tshark -q -z conv,tcp -z conv,udp`
(`check_vs_conv_table: "ok"`); the script fails if any check fails. Counting follows
tshark (see "Counting semantics" in `shared/captures/README.md`): conversation = `tcp.stream` /
`udp.stream`, bytes = sum of `frame.len` (wire length including the link-layer header, not
caplen), A side = source of the conversation's first frame, VLAN id not in the key, TCP/UDP
headers quoted in ICMP errors not counted.

Top level: `file`, `description`, `generator` (tool versions, kernel, the exact capture
commands), `sha1`, `size_bytes`, `format` (container, `ts_resolution`, per-interface
`linktype`, `snaplen`, pcapng `if_name`/`if_tsresol`, block counts), `capinfos`,
`frames_total`, `frame_summary` (frames per protocol, truncated frames, 802.1Q frames per VLAN,
frames per pcapng interface, SLL packet types), `semantics`, `topology` (namespaces with
their interfaces: ifindex, MAC, kind, addresses; links; roles; NAT), `tcp_conversations`,
`udp_conversations`, `check_vs_conv_table`, `conversations`, `nat_pairs` (router-nat only),
`icmp_echo` (echo request/reply groups by address pair and identifier), `flows` (what the
traffic generator did, with exact application payload sizes and the matching stream
numbers), `problems` (always empty in committed files).

Each conversation: `proto`, `stream`, `ip_version`, `a_addr`, `a_port`, `b_addr`, `b_port`,
`a_namespace`, `b_namespace`, `class` (relative to the capture namespace: `local`, `inbound`,
`outbound`, `forwarded`; by address only), `frames`, `bytes`, `frames_a_to_b`,
`bytes_a_to_b`, `frames_b_to_a`, `bytes_b_to_a`, `caplen_bytes`, `l3_bytes` (IPv4 total
length / IPv6 payload length + 40) and per direction, `payload_bytes_a_to_b`/`_b_to_a`
(TCP `tcp.len`, UDP length - 8), `first_frame`, `last_frame`, `frame_numbers`, `rel_start`,
`rel_end`, `duration`, `first_epoch`, `last_epoch`, TCP `tcp_flags` (SYN/FIN/RST counts per
direction) and `syn_seq_raw`, `link` (per direction: VLAN ids, pcapng interfaces, SLL packet
types, SLL2 interface indexes), `label` (the flow that made it), `flow_result`,
`copies_per_packet` (2 for forwarded flows captured on both router interfaces or on `any`),
and for router-nat `nat` (`pre`/`post` and the paired stream). The script checks that every
conversation's payload per direction equals the generator's payload times
`copies_per_packet`.

## Files
""",
    "files": {
        "lo-tcp-udp.pcap": {
            "what": "Loopback inside namespace `ft-lo`: TCP IPv4 download of 64000 body bytes (`lo` MTU 65536 with TSO/GSO: data frames of tens of KB), TCP IPv6 keep-alive connection with 3 rounds of 3000 bytes up / 2000 down, refused TCP connections over IPv4 and IPv6 (SYN answered by RST/ACK), UDP request/response over IPv4 (3x 100 -> 400 bytes) and IPv6 (2x 60 -> 1200 bytes), a UDP datagram to a closed port answered by ICMP port unreachable (quoted UDP header, not counted), `ping` and `ping -6` (2 echoes each). TCP/UDP checksums are not valid (loopback checksum offload). Ethernet link type with zero MACs, as Linux `lo` is.",
            "how": "Python socket servers/clients with fixed ports (clients 40001-40013, servers 8080/8081/5300/5301; closed ports 8089, 5399) and `ping -I`.",
        },
        "veth-ethernet.pcapng": {
            "what": "Namespaces `ft-ea` -- veth `ft-ea0`/`ft-eb0` -- `ft-eb`, captured on `ft-eb0`. Untagged 10.0.1.0/24 and fd00:1::/64; 802.1Q VLAN 10 carrying 10.0.10.0/24 and fd00:10::/64. Untagged: TCP IPv4 download of 20000 bytes, TCP IPv6 2-round exchange (1500 up / 2500 down per round), UDP over IPv4 and IPv6, a TCP download served by `ft-ea` to a client in `ft-eb` (outbound for the capture point); VLAN 10: TCP downloads of 8000 bytes over IPv4 and IPv6, UDP over IPv4 and IPv6. Pings on both. ARP/NDP/MLD present (tagged on VLAN 10). Offloads off: frames <= 1514 bytes (1518 tagged), valid checksums, no Ethernet padding (veth does not pad).",
            "how": "pcapng with one IDB (`if_name` ft-eb0, `if_tsresol` 9); `ethtool -K tx off sg off tso off gso off gro off` on the veths; VLAN 10 via tap devices `ft-ea10`/`ft-eb10` bridged to the veth with a VID 10 tag by the script's `vlan-bridge` (802.1Q module not available).",
        },
        "router-ifaces.pcapng": {
            "what": "Router namespace `ft-rtr` between `ft-cli` (10.1.0.2, fd00:1::2) and `ft-srv` (10.2.0.2, fd00:2::2); router addresses 10.1.0.1/fd00:1::1 on `ft-r0` and 10.2.0.1/fd00:2::1 on `ft-r1`. Forwarded: TCP downloads of 12000 bytes (IPv4, IPv6), a refused TCP connection, UDP (IPv4, IPv6), ping/ping6. Inbound to servers in `ft-rtr`: TCP downloads (IPv4, IPv6), UDP, a TCP connection to the far-side address 10.2.0.1 arriving on `ft-r0`, ping. Outbound from `ft-rtr`: TCP downloads (IPv4, IPv6), UDP over IPv6, ping6. Forwarded packets are in the file twice, once per interface (same tcp.stream: the conversation counts both copies).",
            "how": "the two dumpcaps ran in `ft-rtr` at the same time as the two `any` captures below; `mergecap -I none` keeps the two IDBs apart (0 = ft-r0, 1 = ft-r1, both Ethernet, `if_tsresol` 9) and orders the packets by time.",
        },
        "router-any.pcap": {
            "what": "The same traffic, at the same moment, as seen by `tcpdump -i any` in `ft-rtr`: Linux cooked v1. Forwarded packets appear twice, as received (packet type 0 `host`: addressed to the router's MAC) and as sent (type 4 `outgoing`); inbound traffic is `host` on the way in and `outgoing` on the way back. SLL v1 has no interface index.",
            "how": "`-y LINUX_SLL` is needed: this tcpdump/libpcap (4.99/1.10) writes LINUX_SLL2 for `-i any` by default.",
        },
        "router-any-sll2.pcap": {
            "what": "The same traffic, at the same moment, as `tcpdump -i any -y LINUX_SLL2 -s 128`: Linux cooked v2 with interface index (map it with `topology.namespaces.ft-rtr.interfaces`), snaplen 128 so most data frames are truncated (caplen < frame.len: count `frame.len`).",
            "how": "same moment as router-ifaces.pcapng and router-any.pcap.",
        },
        "router-nat.pcap": {
            "what": "Linux cooked v2 (full snaplen, with interface index). Same topology with nftables masquerade on the router's egress `ft-r1` (IPv4 and IPv6) and no route back on the server. Every flow shows up as a pre-NAT conversation (client address) and a post-NAT one (10.2.0.1 / fd00:2::1); `nat_pairs` links them. `nat-tcp4-a` (10.1.0.2:40001) and `nat-tcp4-b` (10.1.0.3:40001) overlap in time towards the same server port, so the masquerade gives the second one a new source port. Also a TCP download over IPv6, UDP over IPv4 and IPv6, ping/ping6. By address alone the post-NAT conversations look `outbound` (they come from the router's address).",
            "how": "ruleset `table ip|ip6 ft_nat { chain postrouting { type nat hook postrouting priority srcnat; oifname \"ft-r1\" masquerade } }`.",
        },
    },
}


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    def ends(q):
        for n in ("src", "dst"):
            q.add_argument("--" + n, required=True)
        for n in ("sport", "dport"):
            q.add_argument("--" + n, type=int, required=True)
        q.add_argument("--label", required=True)

    q = sub.add_parser("tcp-server"); q.add_argument("--bind", required=True); q.add_argument("--port", type=int, required=True); q.add_argument("--conns", type=int, default=1)
    q = sub.add_parser("tcp-client"); ends(q)
    q.add_argument("--req", type=int, default=0); q.add_argument("--resp", type=int, default=0); q.add_argument("--rounds", type=int, default=1)
    q.add_argument("--pause", type=float, default=0); q.add_argument("--refused", action="store_true")
    q = sub.add_parser("udp-server"); q.add_argument("--bind", required=True); q.add_argument("--port", type=int, required=True); q.add_argument("--count", type=int, default=1); q.add_argument("--resp", type=int, required=True)
    q = sub.add_parser("udp-client"); ends(q)
    q.add_argument("--count", type=int, default=1); q.add_argument("--req", type=int, required=True); q.add_argument("--resp", type=int, default=0)
    q.add_argument("--pause", type=float, default=0); q.add_argument("--closed", action="store_true")
    q = sub.add_parser("vlan-bridge"); q.add_argument("--iface", required=True); q.add_argument("--tap", required=True); q.add_argument("--vid", type=int, required=True)
    q = sub.add_parser("topo"); q.add_argument("--out", required=True); q.add_argument("netns", nargs="+")
    q = sub.add_parser("expect"); q.add_argument("--pcap", required=True); q.add_argument("--meta", required=True)
    q.add_argument("--topo"); q.add_argument("--flows"); q.add_argument("--cmds"); q.add_argument("--out", required=True)
    q = sub.add_parser("readme"); q.add_argument("--dir", required=True)
    a = p.parse_args()
    {"tcp-server": tcp_server, "tcp-client": tcp_client, "udp-server": udp_server, "udp-client": udp_client,
     "vlan-bridge": vlan_bridge, "topo": topo, "expect": expect, "readme": readme}[a.cmd](a)


if __name__ == "__main__":
    main()
PYEOF

# ------------------------------------------------------------------ plumbing --
# Namespaces are named ft-<role>-<pid of this script> so that concurrent runs cannot
# collide; the fixtures and expect.json use the role names (ft-lo, ft-rtr, ...).
nsr() { printf '%s-%s' "$1" "$$"; }                                  # role -> real name
nsx() { local ns; ns=$(nsr "$1"); shift; ip netns exec "$ns" "$@"; }  # foreground only
ipn() { local ns; ns=$(nsr "$1"); shift; ip -n "$ns" "$@"; }

ns_add() {
  local ns=$1
  local real
  real=$(nsr "$ns")
  if ip netns list | awk '{print $1}' | grep -qx "$real"; then die "namespace $real already exists"; fi
  ip netns add "$real"
  NSS+=("$real")
  ipn "$ns" link set lo up
  # fewer spontaneous frames: no DAD, no router solicitations (NDP/ARP/MLD stay)
  nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
}

ns_del_all() {
  local ns
  for ns in "${NSS[@]}"; do ip netns del "$ns"; done
  NSS=()
}

# veth pair with fixed MACs, offloads off so the capture shows wire-size frames
# with correct checksums:  veth NS1 IF1 MAC1 NS2 IF2 MAC2
veth() {
  ip link add "$2" netns "$(nsr "$1")" address "$3" type veth peer name "$5" netns "$(nsr "$4")" address "$6"
  nsx "$1" ethtool -K "$2" tx off sg off tso off gso off gro off >/dev/null
  nsx "$4" ethtool -K "$5" tx off sg off tso off gso off gro off >/dev/null
  ipn "$1" link set "$2" up
  ipn "$4" link set "$5" up
}

addr() { # NS IF ADDR/LEN...
  local ns=$1 dev=$2 a; shift 2
  for a in "$@"; do
    if [[ $a == *:* ]]; then ipn "$ns" addr add "$a" dev "$dev" nodad; else ipn "$ns" addr add "$a" dev "$dev"; fi
  done
}

run_bg() { # NAME NS CMD... : start in the background, pid in BG_PID
  local name=$1 ns=$2; shift 2
  ip netns exec "$(nsr "$ns")" "$@" >"$WORK/$name.log" 2>&1 &
  BG_PID=$!
  LIVE[$BG_PID]=$name
}

reap() { # PID [ACCEPTED_RC]
  local pid=$1 ok=${2:-0} rc=0 name=${LIVE[$1]}
  wait "$pid" || rc=$?
  unset "LIVE[$pid]"
  if [[ $rc -ne 0 && $rc -ne $ok ]]; then
    log "$name (pid $pid) exited with status $rc:"; sed 's/^/    /' "$WORK/$name.log" >&2
    return 1
  fi
}

stop_bg() { kill -TERM "$1"; reap "$1" 143; }

wait_line() { # FILE REGEX TIMEOUT_S PID
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || break
    sleep 0.05
  done
  log "gave up waiting for /$2/ in $1:"; sed 's/^/    /' "$1" >&2
  return 1
}

wait_listen() { # NS t|u PORT
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -n $(nsx "$1" ss -Hln"$2" "sport = :$3") ]] && return 0
    sleep 0.05
  done
  die "nothing listening on $2 port $3 in $1"
}

client() { # NAME NS CMD... : run in the foreground, fail loudly
  local name=$1 ns=$2; shift 2
  if ! ip netns exec "$(nsr "$ns")" "$@" >"$WORK/$name.log" 2>&1; then
    log "$name failed:"; sed 's/^/    /' "$WORK/$name.log" >&2
    return 1
  fi
}

tcp_server() { # LABEL NS ADDR PORT [CONNS] -> BG_PID
  run_bg "srv-$1" "$2" "$PY" "$H" tcp-server --bind "$3" --port "$4" --conns "${5:-1}"
  wait_line "$WORK/srv-$1.log" '^READY' 10 "$BG_PID"
  wait_listen "$2" t "$4"
}

tcp_flow() { # LABEL SRV_NS SRV_ADDR DPORT CLI_NS CLI_ADDR SPORT [tcp-client options]
  local label=$1 sns=$2 saddr=$3 dport=$4 cns=$5 caddr=$6 sport=$7 spid; shift 7
  tcp_server "$label" "$sns" "$saddr" "$dport"; spid=$BG_PID
  client "cli-$label" "$cns" "$PY" "$H" tcp-client --label "$label" --src "$caddr" --sport "$sport" \
    --dst "$saddr" --dport "$dport" "$@"
  reap "$spid"
}

tcp_refused() { # LABEL DST_NS DST_ADDR DPORT CLI_NS CLI_ADDR SPORT
  [[ -z $(nsx "$2" ss -Hlnt "sport = :$4") ]] || die "port $4 unexpectedly open in $2"
  client "cli-$1" "$5" "$PY" "$H" tcp-client --label "$1" --src "$6" --sport "$7" --dst "$3" --dport "$4" --refused
}

udp_flow() { # LABEL SRV_NS SRV_ADDR DPORT CLI_NS CLI_ADDR SPORT COUNT REQ RESP
  local spid
  run_bg "srv-$1" "$2" "$PY" "$H" udp-server --bind "$3" --port "$4" --count "$8" --resp "${10}"
  spid=$BG_PID
  wait_line "$WORK/srv-$1.log" '^READY' 10 "$spid"
  wait_listen "$2" u "$4"
  client "cli-$1" "$5" "$PY" "$H" udp-client --label "$1" --src "$6" --sport "$7" --dst "$3" --dport "$4" \
    --count "$8" --req "$9" --resp "${10}" --pause 0.05
  reap "$spid"
}

udp_closed() { # LABEL DST_NS DST_ADDR DPORT CLI_NS CLI_ADDR SPORT REQ
  [[ -z $(nsx "$2" ss -Hlnu "sport = :$4") ]] || die "udp port $4 unexpectedly open in $2"
  client "cli-$1" "$5" "$PY" "$H" udp-client --label "$1" --src "$6" --sport "$7" --dst "$3" --dport "$4" \
    --req "$8" --closed
}

ping_flow() { # LABEL NS SRC DST COUNT
  client "ping-$1" "$2" ping -n -q -c "$5" -i 0.2 -W 2 -I "$3" "$4"
  printf '{"label": "%s", "proto": "icmp", "client": ["%s", 0], "server": ["%s", 0], "count": %d, "result": "ok"}\n' \
    "$1" "$3" "$4" "$5" >>"$FT_FLOWLOG"
}

cap_start() { # NAME NS FILE tcpdump|dumpcap ARGS...
  local name=$1 ns=$2 file=$3 tool=$4; shift 4
  case $tool in
    tcpdump)
      # -B: with --immediate-mode and a 256 KiB snaplen the default 2 MB ring holds
      # only a few packets and bursts get dropped (seen on -i any)
      run_bg "cap-$name" "$ns" tcpdump -Z root -n --immediate-mode -U -B 32768 "$@" -w "$file"
      wait_line "$WORK/cap-$name.log" '^tcpdump: listening on' 10 "$BG_PID"
      echo "ip netns exec $ns tcpdump -n --immediate-mode -U -B 32768 $* -w $(basename "$file")" >>"$WORK/$FIX.cmds" ;;
    dumpcap)
      run_bg "cap-$name" "$ns" dumpcap -n "$@" -w "$file"
      wait_line "$WORK/cap-$name.log" '^Capturing on' 10 "$BG_PID"
      echo "ip netns exec $ns dumpcap -n $* -w $(basename "$file")" >>"$WORK/$FIX.cmds" ;;
  esac
  CAP[$name]=$BG_PID
}

cap_stop() { # NAME : SIGINT so the file is complete; fail on kernel drops
  local name=$1 pid=${CAP[$1]}
  kill -INT "$pid"
  reap "$pid"
  unset "CAP[$name]"
  if grep -q '^tcpdump' "$WORK/cap-$name.log"; then
    grep -qE '^0 packets dropped by kernel' "$WORK/cap-$name.log" || die "capture $name dropped packets: $(cat "$WORK/cap-$name.log")"
  else
    if grep -E '^Packets received/dropped' "$WORK/cap-$name.log" | grep -qvE '/0 '; then
      die "capture $name dropped packets: $(cat "$WORK/cap-$name.log")"
    fi
  fi
}

begin() { # FIXTURE-ID
  FIX=$1
  export FT_FLOWLOG=$WORK/$FIX.flows.jsonl
  : >"$FT_FLOWLOG"
  : >"$WORK/$FIX.cmds"
  log "== $FIX"
}

settle() { sleep "${1:-2}"; } # let link-up MLD/NDP chatter pass before capturing

finish() { # FILE (in $WORK) META_JSON : write expect.json, check, move both to $OUT
  local f=$1 meta name
  name=$(basename "$f")
  meta=$WORK/$FIX.$name.meta.json
  printf '%s\n' "$2" >"$meta"
  capinfos "$f" >"$WORK/$name.capinfos" || die "capinfos rejects $name"
  tshark -n -r "$f" -q >/dev/null 2>"$WORK/$name.tshark-err" || die "tshark rejects $name: $(cat "$WORK/$name.tshark-err")"
  if grep -qv 'Running as user "root"' "$WORK/$name.tshark-err"; then die "tshark warns on $name: $(cat "$WORK/$name.tshark-err")"; fi
  "$PY" "$H" expect --pcap "$f" --meta "$meta" --topo "$WORK/$FIX.topo.json" --flows "$FT_FLOWLOG" \
    --cmds "$WORK/$FIX.cmds" --out "$f.expect.json" || die "ground truth check failed for $name (see $f.expect.json)"
  local size
  size=$(stat -c %s "$f")
  ((size < 300 * 1024)) || die "$name is $size bytes (limit 300 KB)"
  ((size < 100 * 1024)) || log "note: $name is $size bytes (> 100 KB)"
  mkdir -p "$OUT"
  chmod 644 "$f" "$f.expect.json"
  mv "$f" "$OUT/$name"
  mv "$f.expect.json" "$OUT/$name.expect.json"
  log "$name: $size bytes, $(sed -n 's/^Number of packets: *//p' "$WORK/$name.capinfos") frames"
}

topo() { # ROLE... : record interfaces/addresses of these namespaces
  local r args=()
  for r in "$@"; do args+=("$r=$(nsr "$r")"); done
  "$PY" "$H" topo --out "$WORK/$FIX.topo.json" "${args[@]}"
}

# ------------------------------------------------------------------ fixtures --
COPIES_ONE='{"local": 1, "inbound": 1, "outbound": 1, "forwarded": 1}'

make_lo() {
  begin lo
  local f=$WORK/lo-tcp-udp.pcap
  ns_add ft-lo
  settle 1
  cap_start lo ft-lo "$f" tcpdump -i lo
  tcp_flow lo-tcp4-download ft-lo 127.0.0.1 8080 ft-lo 127.0.0.1 40001 --resp 64000
  tcp_flow lo-tcp6-bidir ft-lo ::1 8081 ft-lo ::1 40002 --rounds 3 --req 3000 --resp 2000 --pause 0.05
  tcp_refused lo-tcp4-refused ft-lo 127.0.0.1 8089 ft-lo 127.0.0.1 40003
  tcp_refused lo-tcp6-refused ft-lo ::1 8089 ft-lo ::1 40004
  udp_flow lo-udp4 ft-lo 127.0.0.1 5300 ft-lo 127.0.0.1 40011 3 100 400
  udp_flow lo-udp6 ft-lo ::1 5301 ft-lo ::1 40012 2 60 1200
  udp_closed lo-udp4-closed ft-lo 127.0.0.1 5399 ft-lo 127.0.0.1 40013 32
  ping_flow lo-ping4 ft-lo 127.0.0.1 127.0.0.1 2
  ping_flow lo-ping6 ft-lo ::1 ::1 2
  sleep 1
  cap_stop lo
  topo ft-lo
  ns_del_all
  finish "$f" '{
    "description": "Loopback of namespace ft-lo (tcpdump -i lo, classic microsecond pcap, DLT_EN10MB with all-zero MACs). TCP: IPv4 download of 64000 body bytes (lo MTU 65536 with TSO, so frames up to ~65 KB), IPv6 keep-alive connection with 3 request/response rounds (data both ways), refused connections (SYN -> RST/ACK) over IPv4 and IPv6. UDP request/response over IPv4 (3x) and IPv6 (2x), one UDP datagram to a closed port answered by ICMP port unreachable (the quoted UDP header is not a conversation frame). ping and ping -6 (2 echoes each). Checksums of TCP/UDP are not valid on loopback (checksum offload).",
    "capture_namespace": "ft-lo",
    "capture": {"tool": "tcpdump", "interface": "lo", "namespace": "ft-lo"},
    "copies": '"$COPIES_ONE"'
  }'
}

make_veth() {
  begin veth
  local f=$WORK/veth-ethernet.pcapng ba bb
  ns_add ft-ea
  ns_add ft-eb
  veth ft-ea ft-ea0 02:00:00:00:0a:01 ft-eb ft-eb0 02:00:00:00:0b:01
  addr ft-ea ft-ea0 10.0.1.1/24 fd00:1::1/64
  addr ft-eb ft-eb0 10.0.1.2/24 fd00:1::2/64
  # "VLAN 10 sub-interfaces" ft-ea10/ft-eb10: tap devices bridged onto the veth with an 802.1Q tag
  ipn ft-ea tuntap add dev ft-ea10 mode tap
  ipn ft-eb tuntap add dev ft-eb10 mode tap
  ipn ft-ea link set ft-ea10 address 02:00:00:10:0a:01
  ipn ft-eb link set ft-eb10 address 02:00:00:10:0b:01
  addr ft-ea ft-ea10 10.0.10.1/24 fd00:10::1/64
  addr ft-eb ft-eb10 10.0.10.2/24 fd00:10::2/64
  run_bg vlan-ea ft-ea "$PY" "$H" vlan-bridge --iface ft-ea0 --tap ft-ea10 --vid 10; ba=$BG_PID
  wait_line "$WORK/vlan-ea.log" '^READY' 10 "$ba"
  run_bg vlan-eb ft-eb "$PY" "$H" vlan-bridge --iface ft-eb0 --tap ft-eb10 --vid 10; bb=$BG_PID
  wait_line "$WORK/vlan-eb.log" '^READY' 10 "$bb"
  ipn ft-ea link set ft-ea10 up
  ipn ft-eb link set ft-eb10 up
  settle 3
  cap_start veth ft-eb "$f" dumpcap -i ft-eb0
  tcp_flow veth-tcp4-download ft-eb 10.0.1.2 8080 ft-ea 10.0.1.1 40001 --resp 20000
  tcp_flow veth-tcp6-bidir ft-eb fd00:1::2 8081 ft-ea fd00:1::1 40002 --rounds 2 --req 1500 --resp 2500 --pause 0.05
  udp_flow veth-udp4 ft-eb 10.0.1.2 5300 ft-ea 10.0.1.1 40011 2 200 300
  udp_flow veth-udp6 ft-eb fd00:1::2 5300 ft-ea fd00:1::1 40012 2 100 700
  tcp_flow veth-tcp4-outbound ft-ea 10.0.1.1 8090 ft-eb 10.0.1.2 40031 --resp 3000
  tcp_flow vlan10-tcp4-download ft-eb 10.0.10.2 8080 ft-ea 10.0.10.1 40021 --resp 8000
  tcp_flow vlan10-tcp6-download ft-eb fd00:10::2 8080 ft-ea fd00:10::1 40022 --resp 8000
  udp_flow vlan10-udp4 ft-eb 10.0.10.2 5300 ft-ea 10.0.10.1 40023 1 100 200
  udp_flow vlan10-udp6 ft-eb fd00:10::2 5300 ft-ea fd00:10::1 40024 1 100 200
  ping_flow veth-ping4 ft-ea 10.0.1.1 10.0.1.2 2
  ping_flow veth-ping6 ft-ea fd00:1::1 fd00:1::2 2
  ping_flow vlan10-ping4 ft-ea 10.0.10.1 10.0.10.2 2
  ping_flow vlan10-ping6 ft-ea fd00:10::1 fd00:10::2 2
  sleep 1
  cap_stop veth
  topo ft-ea ft-eb
  stop_bg "$ba"
  stop_bg "$bb"
  ns_del_all
  finish "$f" '{
    "description": "Namespaces ft-ea and ft-eb joined by the veth pair ft-ea0 <-> ft-eb0, captured on ft-eb0 (inside ft-eb) with dumpcap: pcapng, one IDB (if_name ft-eb0, if_tsresol 9 = nanoseconds), Ethernet. Untagged 10.0.1.0/24 + fd00:1::/64 and 802.1Q VLAN 10 (10.0.10.0/24 + fd00:10::/64, user-space sub-interfaces ft-ea10/ft-eb10 that tag frames with VID 10). Offloads off: MTU-sized frames, valid checksums. TCP download 20000 bytes (IPv4), 2-round keep-alive exchange (IPv6), UDP request/response (IPv4, IPv6), a TCP download in the other direction (client in ft-eb, so outbound for the capture point), and on VLAN 10 TCP downloads of 8000 bytes and UDP request/response over IPv4 and IPv6; pings on both. ARP, NDP and MLD frames appear naturally, tagged on VLAN 10.",
    "capture_namespace": "ft-eb",
    "capture": {"tool": "dumpcap", "interface": "ft-eb0", "namespace": "ft-eb", "peer": "ft-ea/ft-ea0", "vlan_subinterfaces": {"10": ["ft-ea/ft-ea10", "ft-eb/ft-eb10"]}},
    "copies": '"$COPIES_ONE"'
  }'
}

# three namespaces: ft-cli --(ft-c0|ft-r0)-- ft-rtr --(ft-r1|ft-s0)-- ft-srv
router_topology() { # [nat]
  ns_add ft-cli
  ns_add ft-rtr
  ns_add ft-srv
  veth ft-cli ft-c0 02:00:00:01:00:02 ft-rtr ft-r0 02:00:00:01:00:01
  veth ft-rtr ft-r1 02:00:00:02:00:01 ft-srv ft-s0 02:00:00:02:00:02
  addr ft-cli ft-c0 10.1.0.2/24 fd00:1::2/64
  addr ft-rtr ft-r0 10.1.0.1/24 fd00:1::1/64
  addr ft-rtr ft-r1 10.2.0.1/24 fd00:2::1/64
  addr ft-srv ft-s0 10.2.0.2/24 fd00:2::2/64
  nsx ft-rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ipn ft-cli route add default via 10.1.0.1
  ipn ft-cli -6 route add default via fd00:1::1
  if [[ ${1:-} == nat ]]; then
    addr ft-cli ft-c0 10.1.0.3/24
    # no route back to 10.1.0.0/24 / fd00:1::/64 on the server: only masquerading makes replies work
    nsx ft-rtr nft -f - <<'NFT'
table ip ft_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "ft-r1" masquerade
  }
}
table ip6 ft_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "ft-r1" masquerade
  }
}
NFT
  else
    ipn ft-srv route add default via 10.2.0.1
    ipn ft-srv -6 route add default via fd00:2::1
  fi
}

make_router() {
  begin router
  local d=$WORK/router
  mkdir -p "$d"
  router_topology
  settle 3
  cap_start r0 ft-rtr "$d/r0.pcapng" dumpcap -i ft-r0
  cap_start r1 ft-rtr "$d/r1.pcapng" dumpcap -i ft-r1
  cap_start any ft-rtr "$WORK/router-any.pcap" tcpdump -i any -y LINUX_SLL
  cap_start sll2 ft-rtr "$WORK/router-any-sll2.pcap" tcpdump -i any -y LINUX_SLL2 -s 128
  sleep 0.5
  # forwarded (client ns -> server ns through the router)
  tcp_flow fwd-tcp4-download ft-srv 10.2.0.2 8080 ft-cli 10.1.0.2 40001 --resp 12000
  tcp_flow fwd-tcp6-download ft-srv fd00:2::2 8080 ft-cli fd00:1::2 40002 --resp 12000
  tcp_refused fwd-tcp4-refused ft-srv 10.2.0.2 8089 ft-cli 10.1.0.2 40003
  udp_flow fwd-udp4 ft-srv 10.2.0.2 5300 ft-cli 10.1.0.2 40011 2 100 500
  udp_flow fwd-udp6 ft-srv fd00:2::2 5300 ft-cli fd00:1::2 40012 2 100 500
  ping_flow fwd-ping4 ft-cli 10.1.0.2 10.2.0.2 2
  ping_flow fwd-ping6 ft-cli fd00:1::2 fd00:2::2 2
  # inbound (client ns -> server running in the router ns)
  tcp_flow in-tcp4 ft-rtr 10.1.0.1 8081 ft-cli 10.1.0.2 40021 --resp 3000
  tcp_flow in-tcp6 ft-rtr fd00:1::1 8081 ft-cli fd00:1::2 40022 --resp 3000
  udp_flow in-udp4 ft-rtr 10.1.0.1 5301 ft-cli 10.1.0.2 40023 1 64 128
  tcp_flow in-tcp4-far ft-rtr 10.2.0.1 8083 ft-cli 10.1.0.2 40024 --resp 1000
  ping_flow in-ping4 ft-cli 10.1.0.2 10.1.0.1 2
  # outbound (client in the router ns -> server ns)
  tcp_flow out-tcp4 ft-srv 10.2.0.2 8082 ft-rtr 10.2.0.1 40031 --resp 3000
  tcp_flow out-tcp6 ft-srv fd00:2::2 8082 ft-rtr fd00:2::1 40032 --resp 3000
  udp_flow out-udp6 ft-srv fd00:2::2 5302 ft-rtr fd00:2::1 40033 1 64 128
  ping_flow out-ping6 ft-rtr fd00:2::1 fd00:2::2 2
  sleep 1
  cap_stop r0
  cap_stop r1
  cap_stop any
  cap_stop sll2
  topo ft-cli ft-rtr ft-srv
  ns_del_all
  mergecap -I none -F pcapng -w "$WORK/router-ifaces.pcapng" "$d/r0.pcapng" "$d/r1.pcapng"
  echo "mergecap -I none -F pcapng -w router-ifaces.pcapng r0.pcapng r1.pcapng" >>"$WORK/$FIX.cmds"
  local common='
    "capture_namespace": "ft-rtr",
    "links": [["ft-cli/ft-c0", "ft-rtr/ft-r0"], ["ft-rtr/ft-r1", "ft-srv/ft-s0"]],
    "roles": {"ft-cli": "client", "ft-rtr": "router (ip_forward=1, IPv6 forwarding=1)", "ft-srv": "server"},
    "copies": {"local": 1, "inbound": 1, "outbound": 1, "forwarded": 2}'
  local traffic='forwarded ft-cli -> ft-srv: TCP downloads of 12000 body bytes over IPv4 and IPv6, a refused TCP connection (RST forwarded back), UDP request/response over IPv4 and IPv6 (2x), ping and ping6; inbound ft-cli -> servers in ft-rtr: TCP 3000-byte downloads to 10.1.0.1 and fd00:1::1, UDP to 10.1.0.1, a TCP download addressed to the router far-side address 10.2.0.1 (arrives on ft-r0, delivered locally), ping to 10.1.0.1; outbound from ft-rtr (10.2.0.1 / fd00:2::1) -> ft-srv: TCP 3000-byte downloads over IPv4 and IPv6, UDP over IPv6, ping6. Forwarded packets appear twice (once per router interface), inbound/outbound once.'
  finish "$WORK/router-ifaces.pcapng" '{
    "description": "Router namespace ft-rtr between ft-cli (10.1.0.0/24, fd00:1::/64) and ft-srv (10.2.0.0/24, fd00:2::/64). dumpcap on ft-r0 and on ft-r1 (inside ft-rtr), merged in time order by mergecap -I none into one pcapng with two IDBs (0 = ft-r0, client side; 1 = ft-r1, server side), Ethernet, if_tsresol 9. Traffic: '"$traffic"'",
    "capture": {"tool": "dumpcap + mergecap", "namespace": "ft-rtr", "interfaces": ["ft-r0", "ft-r1"], "idb_order": {"0": "ft-r0", "1": "ft-r1"}},'"$common"'
  }'
  finish "$WORK/router-any.pcap" '{
    "description": "Same traffic and same moment as router-ifaces.pcapng, captured by tcpdump -i any -y LINUX_SLL inside ft-rtr: classic microsecond pcap, LINUX_SLL (113). Forwarded packets appear twice: as received on ft-r0/ft-r1 (SLL packet type 0 host, addressed to the router MAC) and as sent on the other interface (packet type 4 outgoing); SLL v1 has no interface index. Traffic: '"$traffic"'",
    "capture": {"tool": "tcpdump", "interface": "any", "namespace": "ft-rtr"},'"$common"'
  }'
  finish "$WORK/router-any-sll2.pcap" '{
    "description": "Same traffic and same moment as router-ifaces.pcapng, captured by tcpdump -i any -y LINUX_SLL2 -s 128 inside ft-rtr: classic microsecond pcap, LINUX_SLL2 (276, with interface index: see topology.namespaces.ft-rtr.interfaces), snaplen 128 so data frames are truncated (frame.len is the wire length, caplen <= 128). Traffic: '"$traffic"'",
    "capture": {"tool": "tcpdump", "interface": "any", "namespace": "ft-rtr", "snaplen": 128},'"$common"'
  }'
}

make_nat() {
  begin nat
  local f=$WORK/router-nat.pcap spid cpid
  router_topology nat
  settle 3
  cap_start nat ft-rtr "$f" tcpdump -i any -y LINUX_SLL2
  sleep 0.5
  # two clients with the same source port to the same server at the same time:
  # the second one's port has to be rewritten by the masquerade
  tcp_server nat-tcp4 ft-srv 10.2.0.2 8080 2; spid=$BG_PID
  run_bg cli-nat-tcp4-a ft-cli "$PY" "$H" tcp-client --label nat-tcp4-a --src 10.1.0.2 --sport 40001 \
    --dst 10.2.0.2 --dport 8080 --rounds 2 --resp 6000 --pause 1.0
  cpid=$BG_PID
  sleep 0.3
  client cli-nat-tcp4-b ft-cli "$PY" "$H" tcp-client --label nat-tcp4-b --src 10.1.0.3 --sport 40001 \
    --dst 10.2.0.2 --dport 8080 --resp 6000
  reap "$cpid"
  reap "$spid"
  tcp_flow nat-tcp6 ft-srv fd00:2::2 8080 ft-cli fd00:1::2 40002 --resp 6000
  udp_flow nat-udp4 ft-srv 10.2.0.2 5300 ft-cli 10.1.0.2 40011 2 100 300
  udp_flow nat-udp6 ft-srv fd00:2::2 5300 ft-cli fd00:1::2 40012 2 100 300
  ping_flow nat-ping4 ft-cli 10.1.0.2 10.2.0.2 2
  ping_flow nat-ping6 ft-cli fd00:1::2 fd00:2::2 2
  sleep 1
  cap_stop nat
  nsx ft-rtr nft list ruleset >"$WORK/nat.ruleset"
  topo ft-cli ft-rtr ft-srv
  ns_del_all
  finish "$f" '{
    "description": "Same three-namespace topology as router-any.pcap, but ft-rtr masquerades (nftables, ip and ip6 tables: postrouting oifname \"ft-r1\" masquerade) and ft-srv has no route back to the client subnets. tcpdump -i any -y LINUX_SLL2 inside ft-rtr (full snaplen): microsecond pcap, LINUX_SLL2 (with interface index: see topology.namespaces.ft-rtr.interfaces). Each flow appears as two conversations: pre-NAT (client address, on ft-r0) and post-NAT (router address 10.2.0.1 / fd00:2::1, on ft-r1); see nat_pairs (TCP paired by SYN sequence number, which NAT leaves alone). nat-tcp4-a (10.1.0.2:40001) and nat-tcp4-b (10.1.0.3:40001) run at the same time to the same server port, so the second gets a new source port from the masquerade. Also a TCP download over IPv6, UDP request/response over IPv4 and IPv6, ping and ping6 (ICMP identifiers may be rewritten).",
    "capture_namespace": "ft-rtr",
    "capture": {"tool": "tcpdump", "interface": "any", "namespace": "ft-rtr"},
    "links": [["ft-cli/ft-c0", "ft-rtr/ft-r0"], ["ft-rtr/ft-r1", "ft-srv/ft-s0"]],
    "roles": {"ft-cli": "client (10.1.0.2 and 10.1.0.3)", "ft-rtr": "router with masquerade on ft-r1", "ft-srv": "server (no route to the client subnets)"},
    "nat": {"type": "masquerade", "egress_interface": "ft-r1", "outside_addrs": ["10.2.0.1", "fd00:2::1"], "inside_prefixes": ["10.1.0.0/24", "fd00:1::/64"]},
    "copies": {"local": 1, "inbound": 1, "outbound": 1, "forwarded": 1}
  }'
}

# ---------------------------------------------------------------------- main --
for t in "${TARGETS[@]}"; do "make_$t"; done
"$PY" "$H" readme --dir "$OUT"
log "done: $(cd "$OUT" && ls -1 ./*.pcap ./*.pcapng 2>/dev/null | wc -l) capture files in $OUT"
