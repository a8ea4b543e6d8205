#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, etcd (the version Kubernetes pins) and kwok
# from Go modules into a cache directory keyed by version, so a warm run only checks that the binaries exist.
# Prints the directory holding the binaries as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache_root=${TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdlib-operator/testbin}
out="$cache_root/k8s-$K8S_VERSION-kwok-$KWOK_VERSION"
mkdir -p "$out"

started=$(date +%s)
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/kube-controller-manager" ] || [ ! -x "$out/kube-scheduler" ]; then
  echo "building Kubernetes $K8S_VERSION components into $out (cold build: expect 10-30 minutes on 2 cores)" >&2
  ldflags="-s -w"
  # Stamp the version as Kubernetes' own build does, so /version and --version report the real release.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
fi
if [ ! -x "$out/etcd" ]; then
  echo "building etcd (the version Kubernetes $K8S_VERSION pins)" >&2
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
fi
if [ ! -x "$out/kwok" ]; then
  echo "building kwok $KWOK_VERSION" >&2
  # kwok pins its own k8s.io libraries; building it inside our module would move them, so install it on its own.
  CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
if [ ! -d "$out/kwok-stages" ]; then
  # The plain kwok binary embeds no lifecycle stages; the module ships them, copy them next to the binary.
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [ -d "$src" ] || (cd "$here" && go mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
  mkdir -p "$out/kwok-stages.tmp" && cp -r "$src"/. "$out/kwok-stages.tmp/" && chmod -R u+w "$out/kwok-stages.tmp"
  mv "$out/kwok-stages.tmp" "$out/kwok-stages"
fi
echo "control plane binaries ready in $(( $(date +%s) - started ))s" >&2
echo "$out"
