#!/bin/sh
# The demo app's one feature.
echo "Hello, ${1:-world}!"
