#!/usr/bin/env bash
# bench-collector.sh: end-to-end benchmark of `flowscan collect` against nfdump's nfcapd
# on loopback (socket, decode, compressed file), both fed by `flowscan gen`.
#
# For each FORMAT x RATE x COLLECTOR it starts the collector in the foreground on a
# loopback port, sends COUNT flows with `flowscan gen`, waits until the collector has gone
# idle, stops it with SIGTERM and reports: flows sent, flows stored, loss, collector CPU
# time per stored flow (utime+stime over the whole life, shutdown flush included, from
# /usr/bin/time), bytes per flow on disk and peak RSS (VmHWM). It ends with the ratios
# flowscan/nfcapd for each pair of comparable runs.
#
# Usage: scripts/bench-collector.sh            (from the repository root, after `make build`)
# Environment (all optional):
#   COUNT=5000000                 flows per run
#   FORMATS="v5 v9 ipfix"         generator formats
#   RATES="0 800000"              flows/s per run; 0 means as fast as the generator goes
#   COLLECTORS="flowscan-4m flowscan-default nfcapd-4m nfcapd-default"
#                                 also ref-4m, ref-default: the same flowscan commands run
#                                 with the binary REF_FLOWSCAN (an older build to compare with);
#                                 nfcapd-plain: nfcapd -B 4 MiB writing uncompressed files
#                                 (nfcapd's own default), whatever NFCAPD_COMPRESS says
#   REF_FLOWSCAN=                 reference flowscan binary for the ref-* collectors
#   NFCAPD_COMPRESS=-y            nfcapd compression flag (-y LZ4; empty: none)
#   REPEAT=1                      runs of each configuration (ratios use the medians)
#   SUSTAIN_SECONDS=0             if >0, afterwards run a sustained-load memory test per
#                                 collector at SUSTAIN_RATE (800000) and print VmRSS samples
#   FLOWSCAN=./flowscan  BASE_PORT=39500  OUT=bench-collector.tsv  KEEP=0 (keep temp dirs)
#   GEN_TIMEOUT=300 STOP_TIMEOUT=60 DRAIN_MAX=30 (seconds; every step is bounded)
set -euo pipefail

COUNT=${COUNT:-5000000}
FORMATS=${FORMATS:-"v5 v9 ipfix"}
RATES=${RATES:-"0 800000"}
COLLECTORS=${COLLECTORS:-"flowscan-4m flowscan-default nfcapd-4m nfcapd-default"}
NFCAPD_COMPRESS=${NFCAPD_COMPRESS--y}
REPEAT=${REPEAT:-1}
SUSTAIN_SECONDS=${SUSTAIN_SECONDS:-0}
SUSTAIN_RATE=${SUSTAIN_RATE:-800000}
FLOWSCAN=${FLOWSCAN:-./flowscan}
REF_FLOWSCAN=${REF_FLOWSCAN:-}
BASE_PORT=${BASE_PORT:-39500}
OUT=${OUT:-bench-collector.tsv}
KEEP=${KEEP:-0}
GEN_TIMEOUT=${GEN_TIMEOUT:-300}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
DRAIN_MAX=${DRAIN_MAX:-30}

CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/bench-collector.XXXXXX)
PIDS=()          # every process this script started, killed on exit
PORT=$BASE_PORT

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check_tools() {
	[[ -x $FLOWSCAN ]] || die "$FLOWSCAN not found: run make build"
	local t
	for t in nfcapd nfdump jq ss /usr/bin/time timeout; do
		command -v "$t" >/dev/null || die "$t missing (apt-get install -y nfdump jq iproute2 time)"
	done
}

# next_port: a free loopback UDP port for the next run (sets PORT).
next_port() {
	PORT=$((PORT + 1))
	while [[ -n $(ss -Hunl "sport = :$PORT") ]]; do PORT=$((PORT + 1)); done
}

# cpu_ticks PID: utime+stime of PID in clock ticks (0 if gone).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# status_kb PID FIELD: a VmXXX field of /proc/PID/status in kB.
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# rcvbuf_errors: the kernel's UDP RcvbufErrors counter (all sockets; only ours are busy).
rcvbuf_errors() { awk '/^Udp:/ {n++; if (n == 1) for (i = 1; i <= NF; i++) h[i] = $i; else for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i}' /proc/net/snmp; }

# start_collector KIND DIR: starts the collector under /usr/bin/time on 127.0.0.1:$PORT.
# Sets TPID (time), CPID (the collector itself) and TIMEFILE.
start_collector() {
	local kind=$1 dir=$2 cmd
	mkdir -p "$dir"
	case $kind in
	flowscan-4m) cmd=("$FLOWSCAN" collect --listen "127.0.0.1:$PORT" --dir "$dir" --metrics "" --log-level warn --rcvbuf 4MiB) ;;
	flowscan-default) cmd=("$FLOWSCAN" collect --listen "127.0.0.1:$PORT" --dir "$dir" --metrics "" --log-level warn) ;;
	ref-4m) cmd=("$REF_FLOWSCAN" collect --listen "127.0.0.1:$PORT" --dir "$dir" --metrics "" --log-level warn --rcvbuf 4MiB) ;;
	ref-default) cmd=("$REF_FLOWSCAN" collect --listen "127.0.0.1:$PORT" --dir "$dir" --metrics "" --log-level warn) ;;
	nfcapd-4m) cmd=(nfcapd -w "$dir" -b 127.0.0.1 -p "$PORT" -B 4194304 -t 300 $NFCAPD_COMPRESS) ;;
	nfcapd-default) cmd=(nfcapd -w "$dir" -b 127.0.0.1 -p "$PORT" -t 300 $NFCAPD_COMPRESS) ;;
	nfcapd-plain) cmd=(nfcapd -w "$dir" -b 127.0.0.1 -p "$PORT" -B 4194304 -t 300) ;;
	*) die "unknown collector $kind" ;;
	esac
	TIMEFILE=$dir.time
	/usr/bin/time -f '%U %S %M' -o "$TIMEFILE" -- "${cmd[@]}" >"$dir.log" 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	CPID=
	local i
	for i in $(seq 100); do # up to 10 s for the child to exist and bind
		[[ -z $CPID ]] && CPID=$(pgrep -P "$TPID" | head -n1 || true)
		if [[ -n $CPID && -n $(ss -Hunl "sport = :$PORT") ]]; then
			PIDS+=("$CPID")
			return 0
		fi
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir.log" >&2
	die "$kind did not start on port $PORT"
}

# wait_idle PID: returns once PID used no CPU for one second (it has drained its socket
# buffer), or after DRAIN_MAX seconds.
wait_idle() {
	local pid=$1 prev cur i
	prev=$(cpu_ticks "$pid")
	for ((i = 0; i < DRAIN_MAX * 2; i++)); do
		sleep 0.5
		cur=$(cpu_ticks "$pid")
		if ((cur - prev <= 1)) && ((i >= 1)); then return 0; fi
		prev=$cur
	done
	log "warning: collector $pid still busy after ${DRAIN_MAX}s"
}

# stop_collector: SIGTERM, then wait (bounded) for it to flush and exit; SIGKILL after
# STOP_TIMEOUT. Sets HWM_KB (peak RSS read just before the signal).
stop_collector() {
	HWM_KB=$(status_kb "$CPID" VmHWM)
	kill -TERM "$CPID" 2>/dev/null || true
	local i
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$TPID" 2>/dev/null; then
		log "warning: collector did not exit in ${STOP_TIMEOUT}s; killing it"
		kill -KILL "$CPID" 2>/dev/null || true
	fi
	wait "$TPID" 2>/dev/null || true
}

# run_gen FORMAT RATE COUNT|DURATION...: runs the generator (bounded), sets SENT, GEN_RATE,
# GEN_CPU (seconds).
run_gen() {
	local format=$1 rate=$2
	shift 2
	local out=$WORK/gen.out tf=$WORK/gen.time
	timeout "$GEN_TIMEOUT" /usr/bin/time -f '%U %S' -o "$tf" -- \
		"$FLOWSCAN" gen --format "$format" --rate "$rate" --target "127.0.0.1:$PORT" "$@" >"$out" 2>&1 ||
		{ cat "$out" >&2; die "generator failed"; }
	# "sent 1000000 flows (...) in 35715 datagrams to ... in 689ms (1451549 flows/s)"
	SENT=$(awk '/^sent/ {print $2}' "$out")
	GEN_RATE=$(sed -n 's/.*(\([0-9.]*\) flows\/s).*/\1/p' "$out")
	GEN_CPU=$(awk '{printf "%.2f", $1 + $2}' "$tf")
	[[ -n $SENT ]] || { cat "$out" >&2; die "cannot parse generator output"; }
}

# measure_store KIND DIR: sets STORED, RECEIVED (flows the collector decoded; flowscan
# only, "-" otherwise), DISK (bytes of flow files).
measure_store() {
	local kind=$1 dir=$2 f n
	case $kind in
	flowscan-* | ref-*)
		local meta=$WORK/meta.json
		"$FLOWSCAN" dump --meta --format json "$dir" >"$meta"
		STORED=$(jq -s 'map(.flows) | add // 0' "$meta")
		RECEIVED=$(jq -s '[.[].exporters[]?.flows] | add // 0' "$meta")
		DISK=$(find "$dir" -name '*.fsf' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
		if [[ -n $(find "$dir" -name '*.tmp') ]]; then log "warning: .tmp left in $dir"; fi
		;;
	nfcapd-*)
		STORED=0
		for f in "$dir"/nfcapd.*; do
			[[ -e $f ]] || continue
			n=$(nfdump -r "$f" -I | awk '$1 == "Flows:" {print $2}')
			STORED=$((STORED + ${n:-0}))
		done
		RECEIVED=-
		DISK=$(find "$dir" -name 'nfcapd.*' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
		if compgen -G "$dir/nfcapd.current.*" >/dev/null; then log "warning: nfcapd left a current file"; fi
		;;
	esac
}

# run_one FORMAT RATE KIND: one benchmark run; appends a row to $OUT.
run_one() {
	local format=$1 rate=$2 kind=$3 dir
	next_port
	dir=$WORK/$format-$rate-$kind
	local err0 err1
	start_collector "$kind" "$dir"
	err0=$(rcvbuf_errors)
	run_gen "$format" "$rate" --count "$COUNT"
	wait_idle "$CPID"
	err1=$(rcvbuf_errors)
	stop_collector
	measure_store "$kind" "$dir"
	local cpu rss
	read -r cpu rss < <(awk '{printf "%.2f %d\n", $1 + $2, $3}' "$TIMEFILE")
	awk -v f="$format" -v r="$rate" -v k="$kind" -v sent="$SENT" -v gr="$GEN_RATE" -v gc="$GEN_CPU" \
		-v rec="$RECEIVED" -v st="$STORED" -v cpu="$cpu" -v disk="$DISK" -v hwm="$HWM_KB" -v rss="$rss" \
		-v drops=$((err1 - err0)) 'BEGIN {
		loss = sent > 0 ? 100 * (sent - st) / sent : 0
		ns = st > 0 ? cpu * 1e9 / st : 0
		bpf = st > 0 ? disk / st : 0
		printf "%s\t%s\t%s\t%d\t%.0f\t%.2f\t%s\t%d\t%.3f\t%d\t%.2f\t%.0f\t%.2f\t%d\t%d\n",
			f, (r == 0 ? "max" : r), k, sent, gr, gc, rec, st, loss, drops, cpu, ns, bpf, hwm / 1024, rss / 1024
	}' | tee -a "$OUT" >&2
	[[ $KEEP == 1 ]] || rm -rf "$dir"
}

# ratios: flowscan/nfcapd per format and rate, for matching receive-buffer settings, from
# the median CPU and bytes per flow over the repetitions; loss is shown as min..max.
ratios() {
	echo
	echo "medians over $REPEAT run(s) and ratios flowscan/nfcapd (CPU ns per stored flow, bytes per flow on disk):"
	awk -F'\t' '
	function median(list,   v, n, i, j, t) {
		n = split(substr(list, 2), v, " ")
		for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	NR > 1 {
		key = $1 "\t" $2 "\t" $3
		if (!(key in ns)) { order[++n] = key; lmin[key] = $9; lmax[key] = $9 }
		ns[key] = ns[key] " " $12; bpf[key] = bpf[key] " " $13; hwm[key] = hwm[key] " " $14
		if ($9 + 0 < lmin[key] + 0) lmin[key] = $9
		if ($9 + 0 > lmax[key] + 0) lmax[key] = $9
	}
	END {
		printf "%-6s %-7s %-17s %12s %11s %10s %18s\n", "format", "rate", "collector", "cpu_ns/flow", "bytes/flow", "hwm_MiB", "loss_% min..max"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, "\t")
			mns[k] = median(ns[k]); mbpf[k] = median(bpf[k])
			printf "%-6s %-7s %-17s %12.0f %11.2f %10.0f %9.3f..%-8.3f\n", f[1], f[2], f[3], mns[k], mbpf[k], median(hwm[k]), lmin[k], lmax[k]
		}
		printf "\n%-6s %-7s %-34s %9s %10s\n", "format", "rate", "pair", "cpu/flow", "bytes/flow"
		np = split("flowscan-4m:nfcapd-4m flowscan-default:nfcapd-default flowscan-default:nfcapd-4m flowscan-4m:nfcapd-plain flowscan-default:nfcapd-plain flowscan-4m:ref-4m flowscan-default:ref-default ref-default:nfcapd-default", pairs, " ")
		for (i = 1; i <= n; i++) {
			split(order[i], f, "\t"); fr = f[1] "\t" f[2]
			if (seen[fr]++) continue
			for (p = 1; p <= np; p++) {
				split(pairs[p], c, ":"); a = fr "\t" c[1]; b = fr "\t" c[2]
				if (!(a in mns) || !(b in mns) || mns[b] == 0 || mbpf[b] == 0) continue
				printf "%-6s %-7s %-34s %9.2f %10.2f\n", f[1], f[2], c[1] "/" c[2], mns[a] / mns[b], mbpf[a] / mbpf[b]
			}
		}
	}' "$OUT"
}

# sustained KIND: SUSTAIN_SECONDS of v9 at SUSTAIN_RATE; prints VmRSS every 5 s.
sustained() {
	local kind=$1 dir samples=()
	next_port
	dir=$WORK/sustain-$kind
	start_collector "$kind" "$dir"
	"$FLOWSCAN" gen --format v9 --rate "$SUSTAIN_RATE" --duration "${SUSTAIN_SECONDS}s" \
		--target "127.0.0.1:$PORT" >"$WORK/sustain.out" 2>&1 &
	local gpid=$! t
	PIDS+=("$gpid")
	for ((t = 0; t <= SUSTAIN_SECONDS + 10; t += 5)); do
		samples+=("$((t))s:$(($(status_kb "$CPID" VmRSS) / 1024))")
		kill -0 "$gpid" 2>/dev/null || break
		sleep 5
	done
	wait "$gpid" || true
	wait_idle "$CPID"
	stop_collector
	measure_store "$kind" "$dir"
	echo "sustained $kind v9 ${SUSTAIN_RATE}/s ${SUSTAIN_SECONDS}s: $(awk '/^sent/ {print $2}' "$WORK/sustain.out") sent, $RECEIVED received, $STORED stored, VmHWM $((HWM_KB / 1024)) MiB; VmRSS MiB: ${samples[*]}"
	[[ $KEEP == 1 ]] || rm -rf "$dir"
}

main() {
	check_tools
	# A private copy: others may rebuild ./flowscan while the benchmark runs.
	cp "$FLOWSCAN" "$WORK/flowscan"
	FLOWSCAN=$WORK/flowscan
	if [[ $COLLECTORS == *ref-* ]]; then
		[[ -x $REF_FLOWSCAN ]] || die "ref-* collectors need REF_FLOWSCAN, an executable flowscan"
		cp "$REF_FLOWSCAN" "$WORK/flowscan-ref"
		REF_FLOWSCAN=$WORK/flowscan-ref
	fi
	log "work dir $WORK; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg); COUNT=$COUNT REPEAT=$REPEAT; results in $OUT"
	log "$("$FLOWSCAN" --version 2>&1 | head -n1), sha256 $(sha256sum "$FLOWSCAN" | cut -c1-12); $(nfcapd -V 2>&1 | head -n1)"
	printf 'format\trate\tcollector\tsent\tgen_flows/s\tgen_cpu_s\treceived\tstored\tloss_%%\trcvbuf_errs\tcpu_s\tcpu_ns/flow\tbytes/flow\thwm_MiB\tmaxrss_MiB\n' >"$OUT"
	local format rate kind rep
	for format in $FORMATS; do
		for rate in $RATES; do
			for ((rep = 1; rep <= REPEAT; rep++)); do
				for kind in $COLLECTORS; do
					log "run $rep/$REPEAT: $format rate=$rate $kind"
					run_one "$format" "$rate" "$kind"
				done
			done
		done
	done
	echo
	column -t -s $'\t' "$OUT"
	ratios
	if ((SUSTAIN_SECONDS > 0)); then
		echo
		for kind in $COLLECTORS; do sustained "$kind"; done
	fi
}

main "$@"
