#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver, for the test that follows an approval link in a real
# browser. Installed with apt when missing and this user may (root, or sudo without a password);
# otherwise says what to install.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt=(apt-get)
elif sudo -n true 2>/dev/null; then
  apt=(sudo -n apt-get)
else
  echo "the approval page test needs Chromium: run 'sudo apt-get install chromium chromium-driver'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || {
  "${apt[@]}" update -q >/dev/null
  "${apt[@]}" install -y -q --no-install-recommends chromium chromium-driver >/dev/null
}
