# Sourced by the scripts that build Go programs (hack/cluster/tools.sh, hack/lazyfs/build.sh): one
# Go selection and one module and build cache, all under $HASAN_CACHE (outside the repository).
# Defines ensure_go, which puts a Go of at least 1.26 on PATH. Logs through the caller's `log`
# function when it has one.

HASAN_CACHE=${HASAN_CACHE:-$HOME/.cache/hasan}
export GOMODCACHE=$HASAN_CACHE/go/mod
export GOCACHE=$HASAN_CACHE/go/build
export GOFLAGS="-buildvcs=false -mod=mod"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}

# The Go release the builds need (Kubernetes' go.mod asks for 1.26.0; this is what CI uses).
GO_VERSION=${HASAN_GO_VERSION:-1.26.8}

go_env_log() {
  if declare -F log >/dev/null; then log "$@"; else echo "go: $*" >&2; fi
}

# Uses the machine's Go when it is recent enough; otherwise fetches the official toolchain, which
# the Go module proxy serves as the module golang.org/toolchain, into the cache.
ensure_go() {
  if command -v go >/dev/null && go_ok "$(go env GOVERSION)"; then return; fi
  local dir=$HASAN_CACHE/go-toolchain/go$GO_VERSION
  if [[ ! -x $dir/bin/go ]]; then
    local arch; arch=$(uname -m); [[ $arch == x86_64 ]] && arch=amd64; [[ $arch == aarch64 ]] && arch=arm64
    local mod="v0.0.1-go$GO_VERSION.linux-$arch"
    go_env_log "installing Go $GO_VERSION from the module proxy (golang.org/toolchain@$mod)"
    command -v unzip >/dev/null || {
      SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq unzip >/dev/null
    }
    local tmp=$dir.tmp; rm -rf "$tmp"; mkdir -p "$tmp"
    curl -fsSL "${GOPROXY%%,*}/golang.org/toolchain/@v/$mod.zip" -o "$tmp/go.zip"
    (cd "$tmp" && unzip -q go.zip && rm go.zip)
    mv "$tmp/golang.org/toolchain@$mod" "$dir.unpacked" && rm -rf "$tmp" "$dir" && mv "$dir.unpacked" "$dir"
    chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
  fi
  export PATH=$dir/bin:$PATH
  go_ok "$(go env GOVERSION)" || { go_env_log "Go at $dir is not usable"; exit 1; }
}

# go_ok goX.Y.Z: at least 1.26.
go_ok() {
  local v=${1#go} major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  ((major > 1 || (major == 1 && minor >= 26)))
}
