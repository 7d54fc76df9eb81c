#!/usr/bin/env bash
# Installs tansu, the Kafka-protocol broker the Kafka tests run against, once into a
# cache directory shared by every checkout; prints the binary's path. Concurrent callers
# wait for the first one (flock). RUNNEL_TANSU=path skips the install.
set -euo pipefail
if [ -n "${RUNNEL_TANSU:-}" ]; then
    echo "$RUNNEL_TANSU"
    exit 0
fi
VERSION=0.6.0
ROOT=${RUNNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runnel}/tansu-$VERSION
BIN=$ROOT/bin/tansu
mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9
if [ ! -x "$BIN" ]; then
    # A debug build without debuginfo: the broker only serves tests, and this builds in
    # about half the time of a release build.
    cargo install tansu --version "$VERSION" --features libsql --locked --debug \
        --config profile.dev.debug=0 --config profile.dev.incremental=false \
        --root "$ROOT" --target-dir "$ROOT/build" >&2
    rm -rf "$ROOT/build"
fi
echo "$BIN"
