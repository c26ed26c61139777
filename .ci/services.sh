#!/usr/bin/env bash
# Start or stop the real services the integration tests use (MariaDB,
# ZooKeeper) and print the environment the tests read.
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
  echo "services started; environment in $envfile:"
  cat "$envfile"
  ;;
stop)
  for svc in zookeeper mariadb; do
    [ -f "$here/$svc.sh" ] && bash "$here/$svc.sh" stop || true
  done
  ;;
env)
  cat "$envfile"
  ;;
*)
  echo "usage: $0 start|stop|env" >&2
  exit 2
  ;;
esac
