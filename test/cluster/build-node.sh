#!/usr/bin/env bash
# Builds what a real node needs besides Debian's runc and CNI plugins: kubelet (from the same Kubernetes
# module as the control plane), containerd with ctr and its runc shim (from containerd's module), and a
# pause program for the pod sandbox image. Cached by version; a warm run only checks the binaries exist.
# Prints the directory holding the binaries as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache_root=${TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdlib-operator/testbin}
out="$cache_root/node-k8s-$K8S_VERSION-containerd-$CONTAINERD_VERSION"
mkdir -p "$out"
started=$(date +%s)
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
if [ ! -x "$out/kubelet" ]; then
  echo "building kubelet $K8S_VERSION into $out" >&2
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kubelet)
fi
if [ ! -x "$out/containerd" ] || [ ! -x "$out/ctr" ] || [ ! -x "$out/containerd-shim-runc-v2" ]; then
  echo "building containerd $CONTAINERD_VERSION into $out" >&2
  # containerd pins its own dependencies: install it on its own, like kwok.
  CGO_ENABLED=0 GOBIN="$out" go install -trimpath -tags urfave_cli_no_docs,no_btrfs \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
fi
if [ ! -x "$out/pause" ]; then
  echo "building the pod sandbox's pause program" >&2
  (cd "$here/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/pause" .)
fi
echo "node binaries ready in $(( $(date +%s) - started ))s" >&2
echo "$out"
