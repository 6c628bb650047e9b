#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver, for the test that follows an approval link in a real
# browser. Installed with apt when missing and this user may (root, or sudo without a password);
# otherwise says what to install.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
apt_install "the approval page test needs Chromium" chromium chromium-driver
