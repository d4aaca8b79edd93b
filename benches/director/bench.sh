#!/bin/bash
# benches/director/bench.sh [SIZES] -- builds the shipped `director` (deploy/build-release) and
# runs benches/director/run.sh inside the lab VM: takeover programming against the plain-C floor,
# re-takeover against a fresh takeover, the daemon's memory, and a one-weight reload of a
# 2,300 x 37,000 table. Knobs: RUNS (default 3), SETTLE (default 2), RELOAD (default 1; 0 skips
# the reload), RUST_LOG (default
# info,director=debug: the daemon's log carries each reconcile's phases). Results: docs/benchmarks.md.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
BIN=$(deploy/build-release)
LAB_ENV="RUNS SETTLE RELOAD RUST_LOG" RUNS=${RUNS:-3} SETTLE=${SETTLE:-2} RELOAD=${RELOAD:-1} LAB_TIMEOUT=${LAB_TIMEOUT:-3000} \
  RUST_LOG=${RUST_LOG:-info,director=debug} \
  tests/lab/run "benches/director/run.sh $BIN '${1:-1000 10000}'"
