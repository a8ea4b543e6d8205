# One image for both processes: `node dist/operator/main.js` (the operator) and the runtime pods, whose
# StatefulSet runs the same image with args ["runtime"]. Not built in CI here (no container engine).
FROM node:20-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm run build:native && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build/Release/tdjson_addon.node ./native/build/Release/tdjson_addon.node
COPY --from=build /src/package.json ./
COPY docker-entrypoint.sh /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["operator"]
