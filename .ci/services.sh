#!/usr/bin/env bash
# Start or stop the real services the integration tests use (MariaDB,
# ZooKeeper, and a second MariaDB that requires TLS, on port
# DBUS_MYSQL_TLS_PORT (default 33062), with certificates from
# .ci/certs.sh in STATE/certs) and print the environment the tests read.
#   .ci/services.sh start   # starts what is installed; writes .ci/env.sh
#   .ci/services.sh stop
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
envfile="${DBUS_CI_STATE:-/tmp/dbus-ci}/env.sh"
mkdir -p "$(dirname "$envfile")"
case "${1:-}" in
start)
  : >"$envfile"
  for svc in mariadb zookeeper; do
    if [ -f "$here/$svc.sh" ]; then
      bash "$here/$svc.sh" start
      bash "$here/$svc.sh" env >>"$envfile"
    fi
  done
  if [ -f "$here/mariadb.sh" ] && [ -f "$here/certs.sh" ]; then
    certs="${DBUS_CI_STATE:-/tmp/dbus-ci}/certs"
    bash "$here/certs.sh" "$certs"
    export DBUS_MYSQL_PORT=${DBUS_MYSQL_TLS_PORT:-33062} DBUS_MYSQL_TLS_DIR=$certs DBUS_MYSQL_REQUIRE_TLS=on
    bash "$here/mariadb.sh" start
    bash "$here/mariadb.sh" env >>"$envfile"
    unset DBUS_MYSQL_PORT DBUS_MYSQL_TLS_DIR DBUS_MYSQL_REQUIRE_TLS
  fi
  echo "services started; environment in $envfile:"
  cat "$envfile"
  ;;
stop)
  for svc in zookeeper mariadb; do
    [ -f "$here/$svc.sh" ] && bash "$here/$svc.sh" stop || true
  done
  [ -f "$here/mariadb.sh" ] && DBUS_MYSQL_PORT=${DBUS_MYSQL_TLS_PORT:-33062} bash "$here/mariadb.sh" stop || true
  ;;
env)
  cat "$envfile"
  ;;
*)
  echo "usage: $0 start|stop|env" >&2
  exit 2
  ;;
esac
