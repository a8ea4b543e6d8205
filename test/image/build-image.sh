#!/usr/bin/env bash
# Builds the repository's Dockerfile as tdlib-operator:test (TEST_IMAGE overrides the tag) on the local stand-in
# base images (build-base-images.sh: cached, built on first use), on the host network, with the classic
# builder (no BuildKit plugin needed). Layers are cached by the engine: a warm build only redoes changed steps.
# Prints the image size on stderr and the image tag as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
docker=${DOCKER:-docker}
image=${TEST_IMAGE:-tdlib-operator:test}

base_args=$(bash "$here/build-base-images.sh" | tail -n 1)
build_image="" base_image=""
for arg in $base_args; do
  case "$arg" in
    BUILD_IMAGE=*) build_image=${arg#BUILD_IMAGE=} ;;
    BASE_IMAGE=*) base_image=${arg#BASE_IMAGE=} ;;
  esac
done
if [ -z "$build_image" ] || [ -z "$base_image" ]; then
  echo "build-base-images.sh printed no BUILD_IMAGE/BASE_IMAGE: $base_args" >&2
  exit 1
fi

started=$(date +%s)
# Where the registry is reached through a TLS-inspecting proxy, the host's Node trusts it through
# NODE_EXTRA_CA_CERTS (BUILD_CA_FILE overrides): the build stage's npm must trust the same CAs. They go into
# a thin layer on the local build image only (rebuilt from the file each run, never cached in the tarballs);
# the final image is based on BASE_IMAGE and never contains them.
ca_file=${BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-}}
if [ -n "$ca_file" ] && [ -s "$ca_file" ]; then
  ctx=$(mktemp -d "${TMPDIR:-/var/tmp}/tdlib-operator-build-ca.XXXXXX")
  trap 'rm -rf "$ctx"' EXIT
  cp "$ca_file" "$ctx/extra-ca.crt"
  printf 'FROM %s\nCOPY extra-ca.crt /usr/local/share/build-ca/extra-ca.crt\nENV NODE_EXTRA_CA_CERTS=/usr/local/share/build-ca/extra-ca.crt\n' \
    "$build_image" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 "$docker" build -q --network host -t "$build_image-build-ca" "$ctx" >/dev/null 2>"$ctx/log" || {
    cat "$ctx/log" >&2
    exit 1
  }
  build_image=$build_image-build-ca
  echo "build stage trusts the CAs in $ca_file" >&2
fi

echo "building $image from $repo/Dockerfile (BUILD_IMAGE=$build_image BASE_IMAGE=$base_image)" >&2
DOCKER_BUILDKIT=0 "$docker" build --network host --build-arg "BUILD_IMAGE=$build_image" \
  --build-arg "BASE_IMAGE=$base_image" -t "$image" "$repo" >&2
size=$("$docker" image inspect -f '{{.Size}}' "$image")
echo "image $image built in $(( $(date +%s) - started ))s, size $size bytes ($(( size / 1000000 )) MB, $(( size / 1048576 )) MiB)" >&2
echo "$image"
