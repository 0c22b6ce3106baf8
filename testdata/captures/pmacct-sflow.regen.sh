#!/bin/sh
# Regenerates pmacct-sflow.pcap (pmacctd's sFlow v5 export of ../traffic.pcap)
# and pmacct-sflow.tshark.json (tshark's decoding of it, the oracle of
# internal/decode/sflow's TestPmacctCapture).
#
# Run from anywhere as root (or a user allowed to capture on lo):
#   testdata/captures/pmacct-sflow.regen.sh
# Needs pmacct 1.7.7 and tshark (Debian 12: apt-get install pmacct tshark)
# and Go.
#
# tshark captures UDP port 39343 on lo while pmacctd reads traffic.pcap
# (pcap_savefile) with its sfprobe plugin at sampling rate 1, agent address
# 127.0.0.1. pmacctd sleeps 2 s, reads the file and exits by itself
# (pcap_savefile_wait: false); should it hang, it is stopped with SIGINT
# after 30 s (it ignores SIGTERM in the foreground). It exits without
# sending its last, unfilled datagram (here the samples of the last 8
# packets).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
for tool in pmacctd tshark go; do
	command -v "$tool" >/dev/null || { echo "pmacct-sflow.regen.sh: $tool not found" >&2; exit 1; }
done
port=39343
tmp=$(mktemp -d)
tspid= pmpid=
cleanup() {
	[ -n "$pmpid" ] && kill -INT "$pmpid" 2>/dev/null || true
	[ -n "$tspid" ] && kill "$tspid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cat >"$tmp/pmacctd.conf" <<CONF
daemonize: false
pcap_savefile: $root/testdata/traffic.pcap
pcap_savefile_wait: false
plugins: sfprobe
sfprobe_receiver: 127.0.0.1:$port
sfprobe_agentip: 127.0.0.1
sampling_rate: 1
CONF

# -F pcap: classic pcap (tshark writes pcapng by default).
tshark -i lo -f "udp dst port $port" -F pcap -w "$tmp/cap.pcap" >"$tmp/tshark.log" 2>&1 &
tspid=$!
i=0
until grep -q "Capturing on" "$tmp/tshark.log"; do
	i=$((i + 1))
	[ $i -le 100 ] || { echo "pmacct-sflow.regen.sh: tshark did not start" >&2; cat "$tmp/tshark.log" >&2; exit 1; }
	sleep 0.1
done
sleep 0.5 # the BPF filter is attached just after the banner
pmacctd -f "$tmp/pmacctd.conf" >"$tmp/pmacctd.log" 2>&1 &
pmpid=$!
i=0
while kill -0 "$pmpid" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "pmacct-sflow.regen.sh: pmacctd still running after 30 s, stopping it" >&2
		kill -INT "$pmpid" 2>/dev/null || true
		break
	fi
	sleep 0.1
done
wait "$pmpid" || true
pmpid=
sleep 1
kill -INT "$tspid"
wait "$tspid" || true
tspid=
cp "$tmp/cap.pcap" "$here/pmacct-sflow.pcap"
chmod 644 "$here/pmacct-sflow.pcap"
go test ./internal/decode/sflow -run '^TestPmacctCapture$' -count=1 -update
ls -l "$here"/pmacct-sflow.*
