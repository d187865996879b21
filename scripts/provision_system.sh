#!/usr/bin/env bash
# Prepares a Debian machine for the test suite: pgvector 0.8 built into the
# local PostgreSQL 15, Debian's Chromium for browser tests, build tools for
# llama.cpp. Idempotent: each step is skipped when already done.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium fonts-dejavu-core)
[ -f /usr/include/postgresql/15/server/postgres.h ] || need_apt+=(postgresql-server-dev-15)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v dpkg-source >/dev/null || need_apt+=(dpkg-dev)
command -v pdftoppm >/dev/null || need_apt+=(poppler-utils)
command -v msgfmt >/dev/null || need_apt+=(gettext)  # makemessages / compilemessages (locale/)
# The Debian Administrator's Handbook in HTML, many languages: a retrieval evaluation corpus
# (manage.py evaluate retrieval --handbook; docs/evaluation/debian-handbook/).
[ -d /usr/share/doc/debian-handbook/html/en-US ] || need_apt+=(debian-handbook)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

pgshare=$(pg_config --sharedir)
if [ ! -f "$pgshare/extension/vector--0.8.0.sql" ]; then
  # pgvector 0.8 (iterative index scans) is only packaged for trixie: build it from source.
  if [ ! -f /etc/apt/sources.list.d/trixie-src.sources ]; then
    cat > /etc/apt/sources.list.d/trixie-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q
  fi
  work=$(mktemp -d)
  (cd "$work" && apt-get source -q --download-only pgvector && dpkg-source -x pgvector_*.dsc src >/dev/null \
     && cd src && make -s PG_CONFIG=/usr/bin/pg_config && make -s install PG_CONFIG=/usr/bin/pg_config)
  rm -rf "$work"
fi
echo "system ready: $(chromium --version 2>/dev/null || echo 'no chromium'), pgvector $(ls $pgshare/extension/ | grep -o 'vector--[0-9.]*\.sql' | sort -V | tail -1)"
