# One image for the operator, the target and the CSI driver: pods choose with their command
#   node /app/dist/operator/main.js ...   or   node /app/dist/target/main.js serve ...
#   or   node /app/dist/operator/csi/main.js --mode controller|node ...
#
# The application is built on the host, not in a build stage, so that building the image needs no
# registry and no container runtime (only COPY, no RUN): `make image` compiles dist/, stages the
# build context in dist/image/context (hack/image/context.sh: package.json, the production
# node_modules for linux/glibc without @pulumi/*, dist/operator, dist/target and the CSI proto)
# and builds this file with buildah; .dockerignore sends nothing else to the builder. By hand:
#   make build && hack/image/context.sh && docker build -t ghcr.io/hasan-dev/hasan:<version> .
#
# BASE needs Node.js 20 or later on PATH and util-linux (fallocate for UNMAP's hole punching, flock
# for the data file's lock; Essential in Debian). Tests build on a Debian rootfs made by mmdebstrap
# with the machine's Node.js (hack/image/base.sh), since no registry can be pulled from there.
ARG BASE=node:20-bookworm-slim
FROM ${BASE}
WORKDIR /app
COPY dist/image/context/ /app/
USER 65532:65532
ENV NODE_ENV=production UV_THREADPOOL_SIZE=16
EXPOSE 3260 3261 8080
CMD ["node", "/app/dist/operator/main.js"]
