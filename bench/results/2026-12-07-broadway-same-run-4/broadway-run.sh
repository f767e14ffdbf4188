#!/bin/sh
# Usage: run.sh <1-4> <int|string|map> [rounds, default 3] [warm, default 50000]
# Times acks warm..warm+1000000. BENCH_RAMP=1 also prints per-100k-ack rates over the first 2M acks.
set -e
cd "$(dirname "$0")/bench"
export MIX_ENV=prod HEX_OFFLINE=1
mix compile >/dev/null
exec mix run --no-compile bench.exs "$@"
