# One image for both processes: the operator (default) and the runtime pods, whose StatefulSet runs the same
# image with args ["runtime"]. The base images are build arguments: by default the official images a user
# pulls; test/image/build-image.sh passes local stand-ins (test/image/build-base-images.sh) where no image
# registry is reachable. Works with the classic builder and BuildKit alike.
#   BUILD_IMAGE  Node 20 on Debian bookworm with npm and apt (node, npm in /usr/local/bin)
#   BASE_IMAGE   Debian bookworm slim; the build stage's node binary is copied onto it (no npm, no yarn)
ARG BUILD_IMAGE=node:20-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# npm ls: an npm that dies mid-install ("Exit handler never called") may still exit 0; fail here instead.
RUN npm ci --no-audit --no-fund --no-update-notifier \
 && npm ls --all >/dev/null
# The addon builds against node-api-headers (native/package.json declares binary.napi_versions): no download.
COPY native ./native
RUN npm run build:native \
 && strip --strip-unneeded native/build/Release/tdjson_addon.node
COPY tsconfig.json tsconfig.build.json ./
COPY crds ./crds
COPY operator ./operator
COPY runtime ./runtime
RUN npm run build \
 && rm -rf dist/.tsbuildinfo \
 && find dist -name '*.map' -delete
# Production dependencies only, without what nothing loads at run time: type declarations, TypeScript
# sources, source maps, docs, a package's own tests, examples, benchmarks and CI files, C sources of
# prebuilt modules, the Bare runtime's native modules (*.bare: Node never loads them) and other platforms'
# prebuilt binaries, and node-addon-api (C++ headers the addon was compiled with). Licenses stay.
RUN npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node-addon-api node_modules/.package-lock.json node_modules/.bin \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.ts' \
      -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' -o -name '*.markdown' -o -name '*.bare' \
      -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.gyp' \
      -o -name '*.gypi' -o -name CMakeLists.txt \) -delete \
 && find node_modules -regextype posix-extended \
      -regex 'node_modules/(@[^/]+/)?[^@/][^/]*/(test|tests|example|examples|benchmark|benchmarks|\.github|coverage|\.nyc_output)' \
      -type d -prune -exec rm -rf {} + \
 && find node_modules -regextype posix-extended -type f -iregex \
      'node_modules/(@[^/]+/)?[^@/][^/]*/((readme|changelog|history|changes)(\.[a-z]+)?|\.[^/]+)' \
      -delete \
 && find node_modules -type d -path '*/prebuilds/*' ! -name 'linux-x64*' -prune -exec rm -rf {} +
# The node binary without its symbol table (-13 MB; .dynsym stays, so addons link as before): only native
# crash backtraces and C++ frames in --prof output lose names.
RUN strip --strip-all -o /usr/local/bin/node.stripped /usr/local/bin/node

FROM ${BASE_IMAGE} AS base
# A passwd entry for the non-root user (os.userInfo() and `id` want one); its home does not exist: nothing
# writes outside the mounted volumes, the root filesystem may be read-only. Docs, man pages, locales and
# glibc's iconv modules go: nothing in the image reads them (Node carries its own ICU). dpkg's database stays,
# so image scanners still see the packages.
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'nonroot:x:65532:' >>/etc/group \
 && mkdir -p /var/lib/tdlib \
 && chown 65532:65532 /var/lib/tdlib \
 && rm -rf /usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian \
      /usr/lib/x86_64-linux-gnu/gconv /var/cache/debconf/*-old /var/lib/apt/lists/*

# One layer for the base: files removed above are gone from the image, not just hidden by a later layer.
FROM scratch
COPY --from=base / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=build /usr/local/bin/node.stripped /usr/local/bin/node
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/native/build/Release/tdjson_addon.node ./native/build/Release/tdjson_addon.node
COPY --from=build /src/dist ./dist
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The runtime keeps TDLib's databases in TDLIB_DATA_DIR: the pod mounts a volume there (operator/pool/desired.ts).
ENV NODE_ENV=production \
    TDLIB_DATA_DIR=/var/lib/tdlib
LABEL org.opencontainers.image.title="tdlib-operator" \
      org.opencontainers.image.description="Kubernetes operator that runs Telegram accounts (TDLib clients); args: operator (default) or runtime" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["operator"]
