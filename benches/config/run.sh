#!/bin/sh
# Parse + validate time and peak memory of `director check` for large tables.
# usage: benches/config/run.sh [ROUNDS]   (from the repository root; builds the release binary)
# Prints, per table: file size, best and median wall time of ROUNDS runs, peak RSS (max of runs).
set -eu
rounds=${1:-5}
cargo build -q --release -p director
bin=target/release/director
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for table in "10000 100000" "2300 37000" "1000 10000"; do
    set -- $table
    f=$dir/t-$1x$2.yaml
    python3 benches/config/gen.py "$1" "$2" >"$f"
    "$bin" check -c "$f" >/dev/null
    times=""; rss=0
    for _ in $(seq "$rounds"); do
        out=$( { /usr/bin/time -f '%e %M' "$bin" check -c "$f" >/dev/null; } 2>&1 )
        t=${out% *}; m=${out#* }
        times="$times $t"
        [ "$m" -gt "$rss" ] && rss=$m
    done
    sorted=$(printf '%s\n' $times | sort -n)
    best=$(printf '%s\n' "$sorted" | head -1)
    median=$(printf '%s\n' "$sorted" | sed -n "$(( (rounds + 1) / 2 ))p")
    printf '%s services x %s real servers: %s bytes, best %ss, median %ss, peak RSS %s KiB\n' \
        "$1" "$2" "$(wc -c <"$f")" "$best" "$median" "$rss"
done
