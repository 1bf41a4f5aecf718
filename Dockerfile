# syntax=docker/dockerfile:1

# Build: the official Bun image compiles the service into one executable
# (migrations, PGlite's WebAssembly, and sharp's addon with libvips embedded).
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json bun.lock ./
# The committed dependency patches (postgres.js, sharp), applied by bun on install.
COPY patches ./patches
RUN bun install --frozen-lockfile
COPY tsconfig.json ./
COPY drizzle ./drizzle
COPY src ./src
RUN bun run build \
 && mkdir -p /out/data \
 && cp dist/users /out/users

# Run: distroless with glibc and the C++ runtime, no shell, non-root. Bun needs only libc; libvips, which
# re-encodes profile pictures, also needs libstdc++ and libgcc_s, which the base image lacks (the `serve`
# command refuses to start without them). /tmp must be writable: libvips and sharp's addon are written
# there from the binary to be loaded.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/users /usr/local/bin/users
# DATA_DIR must be writable by the nonroot user (uid 65532) for the embedded default and local pictures.
COPY --from=build --chown=65532:65532 /out/data /data
# BUN_JSC_forceRAMSize: JavaScriptCore sizes its heap growth for the machine's RAM unless told a
# smaller figure; 256 MiB cut the peak RSS under /me load from ~168 to ~140 MB at no measured cost
# in throughput (128 MiB cost a quarter of it). See bench/README.md.
ENV NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    BUN_JSC_forceRAMSize=268435456
USER 65532:65532
EXPOSE 8000
VOLUME ["/data"]
# No curl or shell in this image: the binary checks itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/users", "healthcheck"]
# The service drains requests and flushes the outbox on SIGTERM; give it time (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/users"]
CMD ["serve"]
