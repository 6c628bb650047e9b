#!/bin/sh
set -e
grep -q "Hello from demo-app" index.html
grep -q "Version 1.0." index.html
echo "smoke tests passed"
