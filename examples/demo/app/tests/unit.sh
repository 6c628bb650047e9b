#!/bin/sh
set -e
out=$(sh greet.sh Baton)
[ "$out" = "Hello, Baton!" ] || { echo "unexpected greeting: $out"; exit 1; }
echo "unit tests passed"
