#!/usr/bin/env bash
# The servers the tests need, for scripts/test.sh (and so `bash .ci/run`): Debian's PostgreSQL and nginx.
#
#   bash scripts/services.sh install        apt-get install postgresql nginx (only what is missing)
#   bash scripts/services.sh start DIR      a throwaway PostgreSQL cluster in DIR on 127.0.0.1 (a free port,
#                                           password auth); prints `export FAQBOT_TEST_DATABASE_URL=...` and
#                                           `export FAQBOT_TEST_NGINX=...` lines for eval
#   bash scripts/services.sh stop DIR       stop that cluster and delete DIR
#
# Nothing is started as a system service: initdb/pg_ctl run as the postgres user (when root) on a temp dir,
# and the tests run nginx themselves in the foreground with their own config, pid and log files.
set -euo pipefail

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

nginx_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

install() {
  if pg_bin >/dev/null && nginx_bin >/dev/null; then
    return 0
  fi
  echo "services: installing Debian's postgresql and nginx" >&2
  # Keep the packages from starting their own system services (the tests start their own, on loopback).
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq postgresql nginx >/dev/null
  if [ "$created" = 1 ]; then rm -f "$policy"; fi
  pg_bin >/dev/null || { echo "services: PostgreSQL binaries not found after install" >&2; exit 1; }
  nginx_bin >/dev/null || { echo "services: nginx not found after install" >&2; exit 1; }
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1 bin port password
  install
  bin=$(pg_bin)
  mkdir -p "$dir"
  # The cluster lives in its own folder under /tmp (DIR's parents may be closed to the postgres user);
  # DIR/cluster names it for `stop`.
  local pg
  pg=$(mktemp -d /tmp/faqbot-pg.XXXXXX)
  printf '%s\n' "$pg" >"$dir/cluster"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  printf '%s\n' "$password" >"$pg/pwfile"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$pg"; fi
  dir=$pg
  as_pg "$bin/initdb" -D "$dir/data" -U faqbot --pwfile="$dir/pwfile" -A scram-sha-256 --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=100" \
    start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
  PGPASSWORD=$password "$bin/psql" -q -h 127.0.0.1 -p "$port" -U faqbot -d postgres \
    -c "CREATE DATABASE faqbot_test" >/dev/null
  echo "export FAQBOT_TEST_DATABASE_URL=postgresql://faqbot:$password@127.0.0.1:$port/faqbot_test"
  echo "export FAQBOT_TEST_NGINX=$(nginx_bin)"
}

stop() {
  local dir=$1 bin pg
  pg=$(cat "$dir/cluster" 2>/dev/null || true)
  if [ -n "$pg" ] && [ -d "$pg/data" ] && bin=$(pg_bin); then
    as_pg "$bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$pg" ] && [ "${pg#/tmp/faqbot-pg.}" != "$pg" ]; then rm -rf "$pg"; fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?usage: services.sh start DIR}" ;;
  stop) stop "${2:?usage: services.sh stop DIR}" ;;
  *) echo "usage: services.sh install | start DIR | stop DIR" >&2; exit 2 ;;
esac
