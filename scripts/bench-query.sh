#!/bin/sh
# bench-query.sh: the same queries with nfdump (LZ4 files from nfcapd -y)
# and flowscan query over the same generated flows; prints the time ratio.
#
#   scripts/bench-query.sh [FLOWS]        (default 10000000; FLOWS=1000000 for a quick run)
#
# Both collectors receive the same `flowscan gen --format v5 --seed 1` stream
# on loopback (a paced rate so neither drops); flow counts are printed so a
# lossy run is visible. Needs nfdump (apt nfdump) and a built ./flowscan
# (make build). Times are wall clock of the query alone, best of 3.
set -eu
FLOWS=${1:-${FLOWS:-10000000}}
RATE=${RATE:-400000}
BIN=${FLOWSCAN:-./flowscan}
command -v nfcapd >/dev/null || { echo "nfcapd not installed (apt install nfdump)" >&2; exit 1; }
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/flowscan
WORK=$(mktemp -d)
trap 'kill $NFPID $FSPID 2>/dev/null || true; rm -rf "$WORK"' EXIT INT TERM
mkdir -p "$WORK/nf" "$WORK/fs"
NFPORT=39701 FSPORT=39702
nfcapd -w "$WORK/nf" -b 127.0.0.1 -p $NFPORT -B 4194304 -t 3600 -y >"$WORK/nfcapd.log" 2>&1 &
NFPID=$!
"$BIN" collect --listen 127.0.0.1:$FSPORT --dir "$WORK/fs" --interval 1h >"$WORK/collect.log" 2>&1 &
FSPID=$!
sleep 1
echo "generating $FLOWS flows at $RATE flows/s to nfcapd and flowscan collect..."
"$BIN" gen --format v5 --seed 1 --count "$FLOWS" --rate "$RATE" --target 127.0.0.1:$NFPORT &
G1=$!
"$BIN" gen --format v5 --seed 1 --count "$FLOWS" --rate "$RATE" --target 127.0.0.1:$FSPORT
wait $G1
sleep 2
kill -TERM $NFPID $FSPID; wait $NFPID $FSPID 2>/dev/null || true

best() { # best-of-3 wall time in seconds of "$@"
	b=""
	for _ in 1 2 3; do
		s=$(date +%s.%N); "$@" >/dev/null 2>"$WORK/err" || { echo "failed: $*" >&2; tail -3 "$WORK/err" >&2; }; e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}

NFFLOWS=$(nfdump -R "$WORK/nf" -q -o csv -s proto/flows -n 0 2>/dev/null | awk -F, 'NR>1 && $6 ~ /^[0-9]+$/ {s+=$6} END {print s+0}')
FSFLOWS=$("$BIN" query --dir "$WORK/fs" --summary --format json | sed 's/.*"flows":\([0-9]*\).*/\1/')
echo "flows stored: nfdump $NFFLOWS, flowscan $FSFLOWS"
echo "bytes on disk: nfdump $(du -sb "$WORK/nf" | cut -f1), flowscan $(du -sb "$WORK/fs" | cut -f1)"
printf '%-40s %10s %10s %8s\n' query nfdump flowscan ratio
run() {
	name=$1 nfargs=$2 fsargs=$3
	# shellcheck disable=SC2086
	tn=$(best sh -c "nfdump -R \"$WORK/nf\" -q -o csv $nfargs")
	# shellcheck disable=SC2086
	tf=$(best sh -c "\"$BIN\" query --dir \"$WORK/fs\" --format csv $fsargs")
	printf '%-40s %9.3fs %9.3fs %7.1fx\n' "$name" "$tn" "$tf" "$(echo "$tn / $tf" | bc -l)"
}
run "top 10 src_addr by bytes" "-s srcip/bytes -n 10" "--top 10 --by src_addr --order bytes"
run "proto tcp and dst port 443, summary" "-s proto/flows 'proto tcp and dst port 443'" "--summary 'proto tcp and dst port 443'"
run "top 10 dst_port by flows, udp" "-s dstport/flows -n 10 'proto udp'" "--top 10 --by dst_port --order flows 'proto udp'"
run "top 10 src/24 by packets, bytes>10K" "-s srcip/packets -n 10 -A srcip4/24 'bytes > 10K'" "--top 10 --by src_addr/24 --order packets 'bytes > 10K'"
