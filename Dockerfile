# syntax=docker/dockerfile:1.7
# The counting function's image. Build (arm64 is the function's default architecture):
#   docker build --platform linux/arm64 --provenance=false -t ada-linecount .
# --provenance=false keeps BuildKit from wrapping the image in an index with an
# attestation manifest, which Lambda does not accept as a function image.
# Without Docker, `npx tsx provision/up.ts` builds the same image itself
# (lambda-image/publish.ts) on the same base and the same bundle.

# The AWS Lambda base image for Node.js 24 (the current LTS; Amazon Linux 2023).
# Its Node.js major must match the bundle target (lambda-image/bundle.ts) and
# baseImage in lambda-image/publish.ts. Pin it by digest for repeatable builds:
#   docker buildx imagetools inspect public.ecr.aws/lambda/nodejs:24 --format '{{json .Manifest.Digest}}'
#   crane digest public.ecr.aws/lambda/nodejs:24
# then build with --build-arg BASE_IMAGE=public.ecr.aws/lambda/nodejs:24@sha256:<digest>
# (the daemonless build logs the digest it resolved on every publish).
ARG BASE_IMAGE=public.ecr.aws/lambda/nodejs:24

# Bundle stage: runs on the build machine's own platform ($BUILDPLATFORM),
# since the bundle is plain JavaScript and needs no emulation.
FROM --platform=$BUILDPLATFORM public.ecr.aws/docker/library/node:20-bookworm-slim AS bundle
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY lib ./lib
COPY lambda-image ./lambda-image
RUN npm run bundle

FROM ${BASE_IMAGE}
# The RDS CA bundle, so the function verifies PostgreSQL's certificate
# (DB_CA_FILE). The Node.js 20+ Lambda runtimes no longer trust Amazon's CA
# file (/var/runtime/ca-cert.pem) unless NODE_EXTRA_CA_CERTS names it, so the
# image carries its own copy. Mode 644: Lambda runs the code as a non-root user.
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem ${LAMBDA_TASK_ROOT}/rds-global-bundle.pem
ENV DB_CA_FILE=/var/task/rds-global-bundle.pem \
    NODE_OPTIONS=--enable-source-maps
COPY --from=bundle --chmod=644 /src/dist/lambda/index.mjs /src/dist/lambda/index.mjs.map ${LAMBDA_TASK_ROOT}/
# The SQS handler; the flush and migration functions run the same image with
# ImageConfig.Command ["index.flushHandler"] and ["index.migrateHandler"].
CMD ["index.handler"]
