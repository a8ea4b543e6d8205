#!/usr/bin/env bash
# Builds promtool and prometheus (module github.com/prometheus/prometheus v0.3MM.P = Prometheus 3.MM.P) and
# helm from their Go modules into a cache directory keyed by version, like build.sh does for the control
# plane: a warm run only checks that the binaries exist. Prints the directory holding them as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache_root=${TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdlib-operator/testbin}
out="$cache_root/tools-prometheus-$PROMETHEUS_MODULE_VERSION-helm-$HELM_VERSION"
mkdir -p "$out"
started=$(date +%s)
# Each tool pins its own dependencies: installed on its own (go install mod@version), outside our module.
install() {
  local name=$1 pkg=$2
  if [ ! -x "$out/$name" ]; then
    echo "building $name from $pkg (cold: several minutes on 2 cores)" >&2
    CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "-s -w" "$pkg"
  fi
}
install promtool "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
install prometheus "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION"
install helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
echo "monitoring and packaging tools ready in $(( $(date +%s) - started ))s" >&2
echo "$out"
