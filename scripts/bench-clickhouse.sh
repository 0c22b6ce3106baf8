#!/usr/bin/env bash
# bench-clickhouse.sh: flowscan collect with and without the ClickHouse sink,
# fed by the same generator; prints the collector's CPU per flow both ways
# (their ratio is the sink's cost), how fast the flows reached a local
# ClickHouse (flows inserted / seconds from the first datagram to the last
# row in the table), the server's CPU per flow (from the first datagram
# until the server is idle again, its merges included) and how many batches
# the collector had to spool (when the server lags, the collector compresses
# them to disk and reads them back: that is most of the sink's CPU here).
#
#   scripts/bench-clickhouse.sh                  # 3 M IPFIX flows at 1 M flows/s
#   COUNT=5000000 RATE=0 FORMAT=v5 scripts/bench-clickhouse.sh   # RATE=0: flat out
#   SENDERS=2 scripts/bench-clickhouse.sh        # two INSERTs at once
#
# Needs clickhouse-server (apt install clickhouse-server) and a built ./flowscan
# (make build). It starts a private server on free loopback ports with its own
# data directory and stops it at the end. Every wait is bounded.
set -euo pipefail
COUNT=${COUNT:-3000000}
RATE=${RATE:-1000000}
FORMAT=${FORMAT:-ipfix}
SENDERS=${SENDERS:-1}
BIN=${FLOWSCAN:-./flowscan}
CH=/usr/sbin/clickhouse-server
[ -x "$CH" ] || { echo "clickhouse-server not installed (apt install clickhouse-server)" >&2; exit 1; }
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/flowscan
WORK=$(mktemp -d)
cp "$BIN" "$WORK/flowscan"
BIN="$WORK/flowscan"
CHPID=""
cleanup() { [ -n "$CHPID" ] && kill -9 "$CHPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(freeport) TCP=$(freeport)
mkdir -p "$WORK/ch"
cat >"$WORK/ch/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$WORK/ch/server.log</log><errorlog>$WORK/ch/err.log</errorlog><console>0</console></logger>
  <http_port>$HTTP</http_port><tcp_port>$TCP</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$WORK/ch/data/</path><tmp_path>$WORK/ch/data/tmp/</tmp_path>
  <user_files_path>$WORK/ch/data/user_files/</user_files_path><format_schema_path>$WORK/ch/data/fs/</format_schema_path>
  <users_config>users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
EOF
cat >"$WORK/ch/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
EOF
"$CH" --config-file="$WORK/ch/config.xml" >"$WORK/ch/stdout.log" 2>&1 &
CHPID=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$HTTP/ping" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$HTTP/bench"
chq() { curl -sS "http://127.0.0.1:$HTTP/" --data-binary "$1"; }
"$BIN" clickhouse init --clickhouse "$URL" | sed 's/^/  /'

# wait_idle PID: until PID used no CPU for one second (bounded to 60 s).
wait_idle() {
	local prev="" cur
	for _ in $(seq 60); do
		cur=$(awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo gone)
		[ "$cur" = "$prev" ] && return 0
		prev=$cur
		sleep 1
	done
}

server_cpu() { awk '{print $14+$15}' "/proc/$CHPID/stat"; } # clock ticks (1/100 s)

# wait_server_idle: until the server used at most 2 ticks in a second (bounded to 120 s).
wait_server_idle() {
	local prev cur
	prev=$(server_cpu)
	for _ in $(seq 120); do
		sleep 1
		cur=$(server_cpu)
		[ $((cur - prev)) -le 2 ] && return 0
		prev=$cur
	done
}

run() { # run NAME EXTRA-ARGS...: prints "name flows cpu_s seconds server_ticks spooled"
	local name=$1; shift
	local port dir tf
	port=$(freeport)
	dir="$WORK/$name"
	tf="$WORK/$name.time"
	MADDR=127.0.0.1:$(freeport)
	/usr/bin/time -f '%U %S' -o "$tf" -- "$BIN" collect --listen "127.0.0.1:$port" --dir "$dir" --metrics "$MADDR" \
		--log-level warn "$@" >"$WORK/$name.log" 2>&1 &
	local tpid=$!
	sleep 1
	local cpid
	cpid=$(pgrep -P "$tpid" | head -1)
	local t0 s0 spooled=0
	wait_server_idle
	s0=$(server_cpu)
	t0=$(date +%s.%N)
	timeout 300 "$BIN" gen --format "$FORMAT" --count "$COUNT" --rate "$RATE" --target "127.0.0.1:$port" >"$WORK/$name.gen" 2>&1
	wait_idle "$cpid"
	if [ "$name" = clickhouse ]; then # until every flow received is inserted (bounded to 5 minutes)
		for _ in $(seq 1500); do
			m=$(curl -s "http://$MADDR/metrics")
			rx=$(echo "$m" | awk '/^flowscan_flows_total/ {s+=$2} END {print s+0}')
			ins=$(echo "$m" | awk '/^flowscan_clickhouse_rows_total/ {print $2+0}')
			[ "$rx" -gt 0 ] && [ "$ins" -ge "$rx" ] && break
			sleep 0.2
		done
		spooled=$(echo "$m" | awk '/^flowscan_clickhouse_spooled_batches_total/ {print $2+0}')
	fi
	local t1
	t1=$(date +%s.%N)
	kill -TERM "$cpid"
	wait "$tpid" || true
	local stored
	stored=$("$BIN" dump --meta --format json "$dir" | python3 -c 'import sys,json; print(sum(json.loads(l)["flows"] for l in sys.stdin))')
	read -r u s <"$tf"
	wait_server_idle
	echo "$name $stored $(echo "$u + $s" | bc) $(echo "$t1 - $t0" | bc) $(($(server_cpu) - s0)) $spooled"
}

echo "collector: $COUNT $FORMAT flows at ${RATE:-flat out} flows/s (0 = flat out), twice"
read -r _ n0 cpu0 _ < <(run files)
read -r _ n1 cpu1 el1 srv1 spooled < <(run clickhouse --clickhouse "$URL" --clickhouse-senders "$SENDERS")
rows=$(chq "SELECT count() FROM bench.flows")
batches=$(chq "SELECT uniqExact(batch_id) FROM bench.flows")
awk -v n0="$n0" -v c0="$cpu0" -v n1="$n1" -v c1="$cpu1" -v rows="$rows" -v el="$el1" -v srv="$srv1" -v sp="$spooled" -v nb="$batches" 'BEGIN {
	printf "%-26s %10s %12s\n", "collector", "flows", "cpu ns/flow"
	printf "%-26s %10d %12.0f\n", "flow files only", n0, c0 * 1e9 / n0
	printf "%-26s %10d %12.0f\n", "flow files + clickhouse", n1, c1 * 1e9 / n1
	printf "ratio of CPU per flow with/without the sink: %.2f\n", (c1 / n1) / (c0 / n0)
	printf "flows in ClickHouse: %d of %d stored (%s)\n", rows, n1, (rows == n1 ? "all" : "MISSING")
	printf "into ClickHouse: %.0f flows/s from the first datagram until the last flow was inserted\n", rows / el
	printf "server CPU per flow: %.2f us (merges included); batches spooled by the collector: %d of %d\n", srv * 1e4 / rows, sp, nb
}'
