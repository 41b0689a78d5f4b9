#!/usr/bin/env bash
# A throw-away Ceph radosgw (one mon, one memstore OSD, one gateway) on 127.0.0.1, for tests and
# benchmarks: a real S3 server that checks SigV4 signatures. Everything lives in a private temp dir.
#
# Usage: start-radosgw.sh            (prints one line `READY PORT ACCESS_KEY SECRET_KEY`, then
#                                     serves commands on stdin until it closes)
# stdin commands, one per line:  stop-rgw | start-rgw   (answer: `OK stop-rgw` / `OK start-rgw`)
# End of stdin (the parent exited or closed it), SIGTERM, SIGINT or SIGHUP: every daemon is
# stopped by its PID and the temp dir removed. The parent dying therefore leaves nothing behind.
set -euo pipefail

for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph python3; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "FAILED missing $tool: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd" >&2
    exit 1
  }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/amibundle-radosgw.XXXXXX")
chmod 700 "$dir"
pids=()
rgw_pid=

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  trap - EXIT TERM INT HUP
  [ -n "$rgw_pid" ] && stop_pid "$rgw_pid"
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}"; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

fail() {
  echo "FAILED $1 (logs: $(tail -n 5 "$dir"/log/* 2>/dev/null | tr '\n' ' ' | cut -c1-600))" >&2
  exit 1
}

mon_port=$(free_port)
rgw_port=$(free_port)
fsid=$(cat /proc/sys/kernel/random/uuid)
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
access_key="AKIA$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
secret_key=$(head -c 24 /dev/urandom | base64 | tr '+/' 'xy')
mkdir -p "$dir"/{mon/mon.a,osd/osd.0,run,log,crash,rgw}
conf="$dir/ceph.conf"

# No cephx: the cluster lives on loopback for one test run. The gateway still checks S3
# signatures with the user's keys. Every mode is crc because 'secure' needs cephx.
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.1/32
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
crash dir = $dir/crash
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd max object name len = 460
osd max object namespace len = 64
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw thread pool size = 64
paxos propose interval = 0.01
paxos min wait = 0.001
# Quiet logs: every line costs CPU on a small machine (errors are still written).
debug rgw = 0/0
debug ms = 0/0
debug osd = 0/0
debug objecter = 0/0
debug monc = 0/0
debug auth = 0/0
debug memstore = 0/0
debug bluestore = 0/0
debug mon = 0/0
debug paxos = 0/0
rgw enable ops log = false
rgw enable usage log = false
EOF

monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1 || fail "ceph-mon --mkfs"
ceph-mon -c "$conf" -i a -f >/dev/null 2>&1 &
pids+=($!)

[ "$(ceph -c "$conf" --connect-timeout 20 osd new "$osd_uuid")" = 0 ] || fail "ceph osd new"
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 || fail "ceph-osd --mkfs"
ceph-osd -c "$conf" -i 0 -f >/dev/null 2>&1 &
pids+=($!)

# The zone group is left as Ceph installs it: its API name `default` is what GetBucketLocation
# answers, as on any stock radosgw users point --url at.
radosgw-admin -c "$conf" user create --uid=tester --display-name=tester \
  --access-key="$access_key" --secret-key="$secret_key" >/dev/null 2>&1 || fail "radosgw-admin user create"

start_rgw() {
  radosgw -c "$conf" -n client.rgw.a -f >/dev/null 2>&1 &
  rgw_pid=$!
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$rgw_port") 2>/dev/null; then return 0; fi
    kill -0 "$rgw_pid" 2>/dev/null || fail "radosgw exited"
    sleep 0.1
  done
  fail "radosgw did not listen on $rgw_port"
}

start_rgw
echo "READY $rgw_port $access_key $secret_key"

while IFS= read -r cmd; do
  case "$cmd" in
    stop-rgw)
      stop_pid "$rgw_pid"
      wait "$rgw_pid" 2>/dev/null || true
      rgw_pid=
      echo "OK stop-rgw"
      ;;
    start-rgw)
      [ -z "$rgw_pid" ] && start_rgw
      echo "OK start-rgw"
      ;;
    *) echo "ERR unknown command: $cmd" ;;
  esac
done
