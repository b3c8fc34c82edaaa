# wsgate container image: a release binary built with the Swift toolchain image, run on slim
# Debian as a non-root user.
#   docker build -t wsgate .
#   docker run -p 8080:8080 -v "$PWD/my-config.yaml:/etc/wsgate/wsgate.yaml:ro" wsgate
# The base images are build arguments, so the image also builds without a registry from locally
# made bases (scripts/container-test.sh: debootstrap + podman, toolchain bind-mounted).
ARG BUILD_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnghttp2-dev=1.52.* zlib1g-dev=1:1.2.13.* libcrypt-dev=1:4.4.33* pkg-config=1.8.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
# release for any image you run; scripts/container-test.sh (make test) builds debug: it checks the
# image's layout, user, signals and drain, not the optimiser. Stripped: 150 MB of symbols and debug info would
# triple the image.
ARG SWIFT_CONFIGURATION=release
RUN swift build -c "$SWIFT_CONFIGURATION" --product wsgate --static-swift-stdlib \
    && install -D --strip "$(swift build -c "$SWIFT_CONFIGURATION" --show-bin-path)/wsgate" /out/wsgate

FROM ${RUNTIME_IMAGE}
# Only what the binary links besides glibc: libnghttp2 (HTTP/2) and libcrypt (htpasswd hashes);
# CA certificates for wss:// backends.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* libnghttp2-14=1.52.* libcrypt1=1:4.4.33* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wsgate
COPY --from=build /out/wsgate /usr/local/bin/wsgate
COPY examples/container.yaml /etc/wsgate/wsgate.yaml
# The configuration path (mount yours over it; it is watched and reloaded on change) and
# JSON log lines for container log collectors. Every WSGATE_* variable is in the README.
ENV WSGATE_CONFIG=/etc/wsgate/wsgate.yaml \
    WSGATE_LOG_FORMAT=json
USER 10001:10001
# 8080: WebSocket listener in the default configuration; 9090: the admin listener, when configured.
EXPOSE 8080 9090
# SIGTERM drains (1001 Going Away to every client, server.drain_timeout); a second one cuts.
STOPSIGNAL SIGTERM
# bash's /dev/tcp keeps curl out of the image; /healthz is answered on every listener.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q '^HTTP/1.1 200' <&3"]
ENTRYPOINT ["/usr/local/bin/wsgate"]
