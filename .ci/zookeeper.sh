#!/usr/bin/env bash
# ZooKeeper for dbus tests, without systemd.
#
#   .ci/zookeeper.sh start            standalone server on 127.0.0.1:${DBUS_ZK_PORT:-21810}
#   .ci/zookeeper.sh stop             stop it (and any ensemble node left running)
#   .ci/zookeeper.sh env              print "export DBUS_TEST_ZK=127.0.0.1:PORT" (eval it)
#   .ci/zookeeper.sh status           print srvr of every running server
#   .ci/zookeeper.sh start-ensemble   3-node ensemble, client ports ENS_BASE+1..3
#   .ci/zookeeper.sh stop-ensemble    stop every ensemble node
#   .ci/zookeeper.sh stop-node N      stop ensemble node N (1..3), hard (SIGKILL)
#   .ci/zookeeper.sh start-node N     start ensemble node N and wait until it serves
#   .ci/zookeeper.sh env-ensemble     print "export DBUS_TEST_ZK_ENSEMBLE=h:p,h:p,h:p"
#
# State lives under ${DBUS_CI_STATE:-/tmp/dbus-ci}/zk (data, logs, pid files).
# The ensemble uses ${DBUS_ZK_ENSEMBLE_BASE:-21820}: client ports base+1..3,
# peer ports base+11..13, election ports base+21..23.
# tickTime is 500 ms so that tests can use session timeouts down to 1 s.
# Readiness: the "srvr" four-letter word answers with a "Mode:" line (checked
# with bash's /dev/tcp; "ruok" answers before the server serves).
set -euo pipefail

PORT=${DBUS_ZK_PORT:-21810}
STATE=${DBUS_CI_STATE:-/tmp/dbus-ci}/zk
ENS_BASE=${DBUS_ZK_ENSEMBLE_BASE:-21820}
JAR_DIR=${DBUS_ZK_JAR_DIR:-/usr/share/java}
HEAP=${DBUS_ZK_HEAP:-256m}
WAIT=${DBUS_ZK_WAIT:-60}

die() { echo "zookeeper.sh: $*" >&2; exit 1; }

classpath() {
	[ -f "$JAR_DIR/zookeeper.jar" ] || die "no $JAR_DIR/zookeeper.jar: install Debian's zookeeper package (apt-get install -y zookeeper)"
	# zookeeper.jar's manifest lists its dependencies; add a logging binding.
	local cp="$JAR_DIR/zookeeper.jar"
	for j in slf4j-simple.jar slf4j-api.jar; do
		[ -f "$JAR_DIR/$j" ] && cp="$cp:$JAR_DIR/$j"
	done
	echo "$cp"
}

# srvr PORT: prints the server's srvr answer, empty when it does not answer.
srvr() {
	local port=$1 out=""
	out=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf srvr >&3 && cat <&3" 2>/dev/null) || true
	printf '%s' "$out"
}

# wait_mode PORT: waits until the server on PORT reports its Mode.
wait_mode() {
	local port=$1 i
	for ((i = 0; i < WAIT * 4; i++)); do
		if srvr "$port" | grep -q '^Mode:'; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# launch DIR MAIN: starts java MAIN DIR/zoo.cfg in the background, pid in DIR/pid.
launch() {
	local dir=$1 main=$2
	# -Dzookeeper.jmx.log4j.disable avoids a log4j JMX lookup; serial GC and C1
	# keep a small footprint on a shared 2-core machine.
	nohup java -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Dzookeeper.jmx.log4j.disable=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
		-cp "$(classpath)" "$main" "$dir/zoo.cfg" >"$dir/server.log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
}

common_cfg() {
	cat <<EOF
tickTime=500
minSessionTimeout=1000
maxSessionTimeout=60000
initLimit=20
syncLimit=10
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,mntr
maxClientCnxns=0
autopurge.purgeInterval=0
EOF
}

start_standalone() {
	local dir=$STATE/standalone
	mkdir -p "$dir/data"
	if alive "$dir/pid" && srvr "$PORT" | grep -q '^Mode:'; then
		echo "zookeeper already running on 127.0.0.1:$PORT (pid $(cat "$dir/pid"))"
		return 0
	fi
	if srvr "$PORT" | grep -q '^Mode:'; then
		die "port $PORT already serves a ZooKeeper this script did not start; set DBUS_ZK_PORT"
	fi
	{
		common_cfg
		echo "dataDir=$dir/data"
		echo "clientPort=$PORT"
	} >"$dir/zoo.cfg"
	launch "$dir" org.apache.zookeeper.server.ZooKeeperServerMain
	if ! wait_mode "$PORT"; then
		tail -n 30 "$dir/server.log" >&2 || true
		stop_dir "$dir"
		die "zookeeper did not serve on 127.0.0.1:$PORT within ${WAIT}s (log: $dir/server.log)"
	fi
	echo "zookeeper serving on 127.0.0.1:$PORT (pid $(cat "$dir/pid"), state $dir)"
}

# stop_dir DIR [SIGNAL]: stops the server whose pid file is in DIR.
stop_dir() {
	local dir=$1 sig=${2:-TERM} pid i
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill -"$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < 40; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pid"
}

node_port() { echo $((ENS_BASE + $1)); }

ens_cfg() {
	local n=$1 dir=$STATE/ens/$1 i
	mkdir -p "$dir/data"
	echo "$n" >"$dir/data/myid"
	{
		common_cfg
		echo "dataDir=$dir/data"
		echo "clientPort=$(node_port "$n")"
		for i in 1 2 3; do
			echo "server.$i=127.0.0.1:$((ENS_BASE + 10 + i)):$((ENS_BASE + 20 + i))"
		done
	} >"$dir/zoo.cfg"
}

start_node() {
	local n=$1 dir=$STATE/ens/$1
	case $n in 1 | 2 | 3) ;; *) die "node must be 1, 2 or 3, got '$n'" ;; esac
	if alive "$dir/pid"; then
		wait_mode "$(node_port "$n")" || die "ensemble node $n (pid $(cat "$dir/pid")) runs but does not serve"
		return 0
	fi
	ens_cfg "$n"
	launch "$dir" org.apache.zookeeper.server.quorum.QuorumPeerMain
}

wait_node() {
	local n=$1
	if ! wait_mode "$(node_port "$n")"; then
		tail -n 30 "$STATE/ens/$n/server.log" >&2 || true
		die "ensemble node $n did not serve on 127.0.0.1:$(node_port "$n") within ${WAIT}s"
	fi
}

ensemble_addrs() {
	echo "127.0.0.1:$(node_port 1),127.0.0.1:$(node_port 2),127.0.0.1:$(node_port 3)"
}

cmd=${1:-}
case $cmd in
start) start_standalone ;;
stop)
	stop_dir "$STATE/standalone"
	for i in 1 2 3; do stop_dir "$STATE/ens/$i"; done
	echo "zookeeper on port $PORT (and any ensemble node) stopped"
	;;
env) echo "export DBUS_TEST_ZK=127.0.0.1:$PORT" ;;
env-ensemble) echo "export DBUS_TEST_ZK_ENSEMBLE=$(ensemble_addrs)" ;;
status)
	{ srvr "$PORT"; echo; } | grep '^Mode:' | sed "s/^/standalone 127.0.0.1:$PORT: /" || echo "standalone 127.0.0.1:$PORT: not serving"
	for i in 1 2 3; do
		{ srvr "$(node_port "$i")"; echo; } | grep '^Mode:' | sed "s/^/node $i 127.0.0.1:$(node_port "$i"): /" || echo "node $i: not serving"
	done
	;;
start-ensemble)
	for i in 1 2 3; do start_node "$i"; done
	for i in 1 2 3; do wait_node "$i"; done
	echo "zookeeper ensemble serving on $(ensemble_addrs)"
	;;
stop-ensemble)
	for i in 1 2 3; do stop_dir "$STATE/ens/$i"; done
	echo "zookeeper ensemble stopped"
	;;
stop-node)
	[ -n "${2:-}" ] || die "usage: $0 stop-node N"
	stop_dir "$STATE/ens/$2" KILL
	echo "ensemble node $2 stopped"
	;;
start-node)
	[ -n "${2:-}" ] || die "usage: $0 start-node N"
	start_node "$2"
	wait_node "$2"
	echo "ensemble node $2 serving on 127.0.0.1:$(node_port "$2")"
	;;
*)
	die "usage: $0 start|stop|env|status|start-ensemble|stop-ensemble|stop-node N|start-node N|env-ensemble"
	;;
esac
