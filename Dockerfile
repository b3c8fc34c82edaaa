# wsgate container image: built with the Swift toolchain image, run on slim Debian as a non-root user.
#   docker build -t wsgate .
#   docker run -p 8080:8080 -v "$PWD/my-config.yaml:/etc/wsgate/wsgate.yaml:ro" wsgate
ARG SWIFT_VERSION=6.1

FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnghttp2-dev=1.52.* zlib1g-dev=1:1.2.13.* libcrypt-dev=1:4.4.33* pkg-config=1.8.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product wsgate --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked \
    && install -D "$(swift build -c release --show-bin-path)/wsgate" /out/wsgate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* libnghttp2-14=1.52.* libcrypt1=1:4.4.33* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wsgate
COPY --from=build /out/wsgate /usr/local/bin/wsgate
COPY examples/container.yaml /etc/wsgate/wsgate.yaml
USER 10001:10001
EXPOSE 8080
# bash's /dev/tcp keeps curl out of the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q '^HTTP/1.1 200' <&3"]
ENTRYPOINT ["/usr/local/bin/wsgate"]
CMD ["--config", "/etc/wsgate/wsgate.yaml"]
