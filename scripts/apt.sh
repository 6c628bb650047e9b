# Sourced by the setup scripts: installs Debian packages with apt when they are missing and this
# user may (root, or sudo without a password); otherwise says, in one line, what to install.
#   apt_install "why they are needed" package...
apt_install() {
  local why=$1
  shift
  local apt
  if [ "$(id -u)" = 0 ]; then
    apt=(apt-get)
  elif sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
  else
    echo "$why: run 'sudo apt-get install $*'" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null 2>&1 || {
    "${apt[@]}" update -q >/dev/null
    "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null
  }
}
