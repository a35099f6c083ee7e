# One image for the operator, the target and the CSI driver: pods choose with their command
#   node /app/dist/operator/main.js ...   or   node /app/dist/target/main.js serve ...
#   or   node /app/dist/operator/csi/main.js --mode controller|node ...
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY operator ./operator
COPY target ./target
COPY hack ./hack
COPY test ./test
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
# util-linux provides fallocate (hole punching for UNMAP) and flock (the data file's lock).
RUN apt-get update && apt-get install -y --no-install-recommends util-linux && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/operator ./dist/operator
COPY --from=build /src/dist/target ./dist/target
# The CSI driver (dist/operator/csi/main.js) loads csi.proto at run time.
COPY --from=build /src/operator/csi/proto ./operator/csi/proto
COPY package.json ./
USER 65532:65532
ENV NODE_ENV=production UV_THREADPOOL_SIZE=16
EXPOSE 3260 3261 8080
CMD ["node", "/app/dist/operator/main.js"]
