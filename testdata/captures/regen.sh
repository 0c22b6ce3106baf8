#!/bin/sh
# Regenerates the softflowd export captures and their tshark oracles.
#
# Run from anywhere (as root, or as a user allowed to capture on lo):
#   testdata/captures/regen.sh
# Needs softflowd 1.1.0 and tshark (Debian 12: apt-get install softflowd tshark)
# and Go. Input is testdata/traffic.pcap (regenerate it first, if needed, with
# go run ./internal/testutil/cmd/mktraffic -o testdata/traffic.pcap).
#
# For each export version it starts tshark on the loopback port, waits until
# tshark captures, replays traffic.pcap through softflowd (-a: pcap time;
# -m 200000: no early expiry; -6: track IPv6 also for v5, which cannot export
# it), waits for softflowd to exit, lets tshark settle, stops tshark by PID and
# writes the classic-pcap capture plus NAME.tshark.json, tshark's decoding of
# the same datagrams reduced by go run ./internal/testutil/cmd/tsharkoracle.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
for tool in softflowd tshark go; do
	command -v "$tool" >/dev/null || { echo "regen.sh: $tool not found" >&2; exit 1; }
done
tmp=$(mktemp -d)
tspid=
cleanup() {
	[ -n "$tspid" ] && kill "$tspid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

run() { # name version port
	name=$1 ver=$2 port=$3
	out="$here/$name.pcap"
	# -F pcap: classic pcap (tshark writes pcapng by default).
	tshark -i lo -f "udp port $port" -F pcap -w "$tmp/$name.pcap" >"$tmp/tshark.log" 2>&1 &
	tspid=$!
	i=0
	until grep -q "Capturing on" "$tmp/tshark.log"; do
		i=$((i + 1))
		[ $i -le 100 ] || { echo "regen.sh: tshark did not start" >&2; cat "$tmp/tshark.log" >&2; exit 1; }
		sleep 0.1
	done
	sleep 0.5 # the BPF filter is attached just after the banner
	timeout 60 softflowd -r testdata/traffic.pcap -a -n "127.0.0.1:$port" -v "$ver" -6 \
		-m 200000 -d -p "$tmp/softflowd.pid" >"$here/$name.softflowd.txt" 2>&1
	sleep 1
	kill -INT "$tspid"
	wait "$tspid" || true
	tspid=
	cp "$tmp/$name.pcap" "$out"
	chmod 644 "$out"
	go run ./internal/testutil/cmd/tsharkoracle -port "$port" -o "$here/$name.tshark.json" "$out"
}

run softflowd-v5 5 39005
run softflowd-v9 9 39009
run softflowd-ipfix 10 39010
ls -l "$here"
