#!/bin/bash
# benches/ipvs/bench.sh [SIZES] -- builds the shipped `director` (deploy/build-release: release
# profile, static, non-PIE) and runs benches/ipvs/run.sh inside the lab VM (tests/lab/run).
# Knobs: RUNS (rounds per size, default 5), SETTLE (seconds between contenders, default 2),
# CARGO_TARGET_DIR (default target/). Results: docs/benchmarks.md.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
BIN=$(deploy/build-release)
LAB_ENV="RUNS SETTLE" RUNS=${RUNS:-5} SETTLE=${SETTLE:-2} \
  tests/lab/run "benches/ipvs/run.sh $BIN '${1:-1000 10000}'"
