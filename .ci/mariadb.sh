#!/usr/bin/env bash
# A throwaway MariaDB for dbus tests, without systemd.
#
#   .ci/mariadb.sh start     init the data dir if needed, start, wait until it answers
#   .ci/mariadb.sh stop      stop it (TERM, then KILL after 30 s)
#   .ci/mariadb.sh restart   stop then start with the same data (tests restart mid-stream)
#   .ci/mariadb.sh kill      SIGKILL the server (crash tests), no wait for a clean shutdown
#   .ci/mariadb.sh env       print the export line .ci/run evals
#   .ci/mariadb.sh status    print whether it answers
#   .ci/mariadb.sh wipe      stop and delete the data dir
#
# Settings (environment):
#   DBUS_CI_STATE      state root (default /tmp/dbus-ci); data under STATE/mariadb
#                      (STATE/mariadb-PORT for a non-default port)
#   DBUS_MYSQL_PORT    TCP port on 127.0.0.1 (default 33061)
#   DBUS_MYSQL_BINLOG  "on" (default): ROW binlog with full image and full
#                      metadata; "off": no binary log (tests of the error dbus
#                      gives when binlog is off)
#   DBUS_MYSQL_TLS_DIR  certificates from .ci/certs.sh DIR: the server uses
#                      server.pem/server.key and trusts ca.pem (client
#                      certificates); env then prints DBUS_TEST_MYSQL_TLS_ADDR
#                      and DBUS_TEST_TLS_DIR instead of DBUS_TEST_MYSQL_ADDR
#   DBUS_MYSQL_REQUIRE_TLS "on": require_secure_transport=ON (plaintext TCP
#                      clients are refused); needs DBUS_MYSQL_TLS_DIR
#
# A TLS instance for the TLS tests, beside the default one:
#   .ci/certs.sh /tmp/dbus-ci/certs
#   DBUS_MYSQL_PORT=33062 DBUS_MYSQL_TLS_DIR=/tmp/dbus-ci/certs DBUS_MYSQL_REQUIRE_TLS=on .ci/mariadb.sh start
#
# Accounts: root has no password and is reachable only from 127.0.0.1 (the
# server binds 127.0.0.1 only and is thrown away); "dbus"/"dbus" is the
# replication user with exactly the grants dbus documents:
# REPLICATION SLAVE, REPLICATION CLIENT (BINLOG MONITOR), SELECT.
#
# Idempotent: start on a running server only checks it answers; stop on a
# stopped one does nothing.
set -euo pipefail

PORT=${DBUS_MYSQL_PORT:-33061}
ROOT=${DBUS_CI_STATE:-/tmp/dbus-ci}
if [ "$PORT" = 33061 ]; then
	STATE=$ROOT/mariadb
else
	STATE=$ROOT/mariadb-$PORT
fi
DATA=$STATE/data
PIDFILE=$STATE/mariadbd.pid
LOG=$STATE/mariadbd.log
SOCK=$STATE/mysql.sock
BINLOG=${DBUS_MYSQL_BINLOG:-on}
WAIT=${DBUS_MYSQL_WAIT:-60}
TLSDIR=${DBUS_MYSQL_TLS_DIR:-}
REQUIRE_TLS=${DBUS_MYSQL_REQUIRE_TLS:-off}
# Clients of a TLS instance speak TLS (required when require_secure_transport is on).
CLIENT_TLS=()
if [ -n "$TLSDIR" ]; then
	CLIENT_TLS=(--ssl --ssl-ca="$TLSDIR/ca.pem")
fi

die() { echo "mariadb.sh: $*" >&2; exit 1; }

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found: install Debian's mariadb-server and mariadb-client (apt-get install -y mariadb-server mariadb-client)"
}

ping_db() {
	mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P "$PORT" -uroot "${CLIENT_TLS[@]}" --connect-timeout=2 ping >/dev/null 2>&1
}

alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

sql() { mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P "$PORT" -uroot "${CLIENT_TLS[@]}" -e "$1"; }

init_data() {
	[ -d "$DATA/mysql" ] && return 0
	need mariadb-install-db
	mkdir -p "$DATA"
	if ! mariadb-install-db --no-defaults --user=root --datadir="$DATA" \
		--auth-root-authentication-method=normal --skip-test-db >"$STATE/install.log" 2>&1; then
		tail -n 30 "$STATE/install.log" >&2 || true
		rm -rf "$DATA"
		die "mariadb-install-db failed (log: $STATE/install.log)"
	fi
	touch "$STATE/.needs-users"
}

start() {
	need mariadbd
	need mariadb-admin
	mkdir -p "$STATE"
	if alive && ping_db; then
		echo "mariadb already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), data $DATA)"
		return 0
	fi
	if ! alive && ping_db; then
		die "port $PORT already serves a MariaDB this script did not start; set DBUS_MYSQL_PORT"
	fi
	init_data
	local tls_args=()
	if [ -n "$TLSDIR" ]; then
		[ -s "$TLSDIR/server.pem" ] || die "DBUS_MYSQL_TLS_DIR=$TLSDIR has no server.pem: run .ci/certs.sh $TLSDIR"
		tls_args=(--ssl-cert="$TLSDIR/server.pem" --ssl-key="$TLSDIR/server.key" --ssl-ca="$TLSDIR/ca.pem")
		if [ "$REQUIRE_TLS" = on ]; then
			tls_args+=(--require-secure-transport=ON)
		fi
	elif [ "$REQUIRE_TLS" = on ]; then
		die "DBUS_MYSQL_REQUIRE_TLS=on needs DBUS_MYSQL_TLS_DIR (certificates from .ci/certs.sh)"
	fi
	local binlog_args=()
	if [ "$BINLOG" = on ]; then
		binlog_args=(--log-bin="$DATA/mysql-bin" --binlog-format=ROW --binlog-row-image=FULL
			--binlog-row-metadata=FULL --gtid-strict-mode=1)
	fi
	if ! alive; then
		# Small buffers: the machine is shared. max_allowed_packet covers
		# the 5 MB row tests with room.
		nohup mariadbd --no-defaults --user=root --datadir="$DATA" --port="$PORT" \
			--bind-address=127.0.0.1 --socket="$SOCK" --pid-file="$PIDFILE" \
			--server-id=1 "${binlog_args[@]}" "${tls_args[@]}" \
			--skip-name-resolve --max-allowed-packet=64M \
			--innodb-buffer-pool-size=64M --innodb-log-file-size=64M \
			--performance-schema=OFF --skip-log-error --log-error="$LOG" \
			>>"$STATE/stdout.log" 2>&1 </dev/null &
		echo $! >"$PIDFILE.launcher"
	fi
	local i
	for ((i = 0; i < WAIT * 4; i++)); do
		ping_db && break
		if ! kill -0 "$(cat "$PIDFILE.launcher")" 2>/dev/null && ! alive; then
			tail -n 30 "$LOG" >&2 || true
			die "mariadbd exited during start-up (log: $LOG)"
		fi
		sleep 0.25
	done
	ping_db || { tail -n 30 "$LOG" >&2 || true; die "mariadb did not answer on 127.0.0.1:$PORT within ${WAIT}s (log: $LOG)"; }
	# The launcher pid is mariadbd itself (exec'd by nohup); the server also
	# writes its own pid file. Prefer the server's.
	[ -s "$PIDFILE" ] || cp "$PIDFILE.launcher" "$PIDFILE"
	if [ -f "$STATE/.needs-users" ]; then
		# --skip-name-resolve: TCP clients are matched by IP, so root needs
		# a 127.0.0.1 account.
		sql "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" 2>/dev/null ||
			mariadb --no-defaults --socket="$SOCK" -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
		sql "CREATE USER IF NOT EXISTS 'dbus'@'%' IDENTIFIED BY 'dbus';
			GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'dbus'@'%';
			FLUSH PRIVILEGES;"
		rm -f "$STATE/.needs-users"
	fi
	echo "mariadb serving on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), binlog $BINLOG, tls ${TLSDIR:-off}, require_secure_transport $REQUIRE_TLS, data $DATA)"
}

# stop [SIGNAL]
stop() {
	local sig=${1:-TERM} pid i
	for f in "$PIDFILE" "$PIDFILE.launcher"; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			kill -"$sig" "$pid" 2>/dev/null || true
			for ((i = 0; i < 120; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.25
			done
			kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	rm -f "$PIDFILE" "$PIDFILE.launcher"
}

cmd=${1:-}
case $cmd in
start) start ;;
stop)
	stop TERM
	echo "mariadb on port $PORT stopped"
	;;
kill)
	stop KILL
	echo "mariadb on port $PORT killed"
	;;
restart)
	stop TERM
	start
	;;
env)
	if [ -n "$TLSDIR" ]; then
		echo "export DBUS_TEST_MYSQL_TLS_ADDR=127.0.0.1:$PORT DBUS_TEST_TLS_DIR=$TLSDIR"
	else
		echo "export DBUS_TEST_MYSQL_ADDR=127.0.0.1:$PORT DBUS_TEST_MYSQL_USER=root DBUS_TEST_MYSQL_PASSWORD= DBUS_TEST_MYSQL_DATADIR=$DATA"
	fi
	;;
status)
	if ping_db; then echo "mariadb on 127.0.0.1:$PORT answers"; else echo "mariadb on 127.0.0.1:$PORT: not answering"; exit 1; fi
	;;
wipe)
	stop TERM
	rm -rf "$STATE"
	echo "mariadb state $STATE removed"
	;;
*)
	die "usage: $0 start|stop|restart|kill|env|status|wipe"
	;;
esac
