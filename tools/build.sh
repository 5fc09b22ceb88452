#!/usr/bin/env bash
# Build the Pulumi CLI and a Python language host from the Go module proxy into
# a cache keyed by this script and the wrapper modules' go.mod/go.sum.
# Progress goes to stderr; the last line on stdout is the bin directory.
#
#   bin=$(tools/build.sh | tail -n1); export PATH="$bin:$PATH"
#   tools/build.sh --check    # a cache hit prints the bin directory; a miss exits 3, builds nothing
#
# Env: APICA_PD_TOOLS_CACHE (default ~/.cache/apica-pd-tools), TOOLS_REBUILD=1
# to ignore a cache hit.
set -euo pipefail

check_only=0
case ${1:-} in
  "") ;;
  --check) check_only=1 ;;
  *) printf 'usage: tools/build.sh [--check]\n' >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Versions the binaries must report (see README.md for the pairing).
PULUMI_VERSION=v3.274.0
# Stand-in: the newest Python host the proxy serves (README.md says why).
LANGHOST_SDK_VERSION=v3.79.0

# Go: the machine's own toolchain (go.mod asks for >= 1.26.6); never fetch another.
export GOTOOLCHAIN=local
# Modules come from the proxy only: no direct VCS fallback.
export GOPROXY=https://proxy.golang.org
# The committed go.sum is the lock: fail rather than edit it.
export GOFLAGS="-mod=readonly -buildvcs=false"
# sum.golang.org itself does not resolve here, but the proxy serves the checksum
# database (/sumdb/sum.golang.org/...), and the go command uses that, so
# verification stays on. Any new module is checked against it; the committed
# go.sum covers everything this build needs.
export GOSUMDB=sum.golang.org
export CGO_ENABLED=0

log() { printf '[tools/build.sh] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go not found on PATH"; exit 1; }

modules=(pulumi pulumi-language-python)
key=$(cd "$here" && cat build.sh "${modules[@]/%//go.mod}" "${modules[@]/%//go.sum}" | sha256sum | cut -c1-16)
cache=${APICA_PD_TOOLS_CACHE:-$HOME/.cache/apica-pd-tools}
bin=$cache/$key/bin

healthy() {
  local dir=$1
  [[ -x $dir/pulumi && -x $dir/pulumi-language-python && -x $dir/pulumi-language-python-exec ]] || return 1
  [[ $("$dir/pulumi" version 2>/dev/null) == "$PULUMI_VERSION" ]] || return 1
  # The host has no --version flag; read the module version built into it.
  go version -m "$dir/pulumi-language-python" 2>/dev/null |
    grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/pulumi/pulumi/sdk/v3[[:space:]]+$LANGHOST_SDK_VERSION[[:space:]]" || return 1
}

if [[ $check_only == 1 || ${TOOLS_REBUILD:-0} != 1 ]] && healthy "$bin"; then
  log "cache hit: $bin"
  echo "$bin"
  exit 0
fi
if [[ $check_only == 1 ]]; then
  log "not built: $bin (run tools/build.sh: Go >= 1.26.6 and the Go module proxy, about 8 min the first time)"
  exit 3
fi

log "building into $bin ($(go version))"
mkdir -p "$cache/$key"
tmp=$(mktemp -d "$cache/$key/bin.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

build() { # build <module dir> <ldflags> <package>...
  local dir=$1 ldflags=$2 start=$SECONDS
  shift 2
  (cd "$here/$dir" && go build -p 2 -trimpath -ldflags "$ldflags" -o "$tmp/" "$@")
  log "built $* in $((SECONDS - start))s"
}

start=$SECONDS
vpkg=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
build pulumi "-s -w -X $vpkg=$PULUMI_VERSION" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
build pulumi-language-python "-s -w -X $vpkg=$LANGHOST_SDK_VERSION" \
  github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python

# The Python language host runs this script from beside its own binary. It is
# part of the sdk/v3 module: take the CLI's copy (its arguments are the ones
# the v3.79.0 host passes) from the module cache.
sdk_dir=$(cd "$here/pulumi" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$tmp/"

healthy "$tmp" || { log "built tools fail the sanity check"; exit 1; }
chmod 0755 "$tmp"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
log "done in $((SECONDS - start))s"
echo "$bin"
