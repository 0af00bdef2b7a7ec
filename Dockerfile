# syntax=docker/dockerfile:1.7
# The counting function's image. Build (arm64 is the function's default architecture):
#   docker build --platform linux/arm64 --provenance=false -t ada-linecount .
# --provenance=false keeps BuildKit from wrapping the image in an index with an
# attestation manifest, which Lambda does not accept as a function image.
#
# Without Docker, `npx tsx provision/up.ts` builds the same image itself
# (lambda-image/publish.ts, from the recipe in lambda-image/recipe.ts): the same base, bundle, RDS CA bundle, ENV and
# CMD. lambda-image/dockerfile.test.ts reads this file and fails when the
# two recipes differ, or when a Node.js major here is not the project's
# (.nvmrc, the bundle target in lambda-image/bundle.ts).
#
# Base images are named by tag in the FROM lines themselves, because
# Dependabot (.github/dependabot.yml) reads FROM lines and does not expand
# ARGs. They are not pinned by digest: no digest for these tags could be
# established and cited here. To pin one, look it up:
#   crane digest public.ecr.aws/lambda/nodejs:24
#   docker buildx imagetools inspect public.ecr.aws/lambda/nodejs:24 --format '{{json .Manifest.Digest}}'
# and append it to the tag (public.ecr.aws/lambda/nodejs:24@sha256:<digest>),
# here and in baseImage in lambda-image/recipe.ts (the test keeps them equal).
# From then on Dependabot's weekly docker check proposes the new digest each
# time AWS republishes the tag. The daemonless build logs the digest it
# resolved on every publish.

# The final stage's base: the lambda-base stage below, unless a one-off build
# names another with --build-arg BASE_IMAGE=<image>.
ARG BASE_IMAGE=lambda-base

# The AWS Lambda base image for Node.js 24 (Amazon Linux 2023), the
# function's runtime.
FROM public.ecr.aws/lambda/nodejs:24 AS lambda-base

# Bundle stage: runs on the build machine's own platform ($BUILDPLATFORM),
# since the bundle is plain JavaScript and needs no emulation.
FROM --platform=$BUILDPLATFORM public.ecr.aws/docker/library/node:24-bookworm-slim AS bundle
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the bundle needs esbuild's platform package, not the
# embedded PostgreSQL's install step (local demo only)
RUN npm ci --no-audit --no-fund --ignore-scripts
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
