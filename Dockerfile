# tinymon in an empty image: the static binary and nothing else.
#
# The binary is built outside Docker by `make build` (static musl, fat LTO)
# and copied in, as Prometheus's own Dockerfiles copy prebuilt binaries:
#   - the image holds exactly the binary that `make test` tested;
#   - building the image needs no base image, so it works where no registry
#     can be reached, with the legacy builder or BuildKit, in about a second;
#   - `make image` (and `make up`) run `make build` first. Without a local
#     Rust toolchain, `make build` runs cargo inside the rust image instead,
#     so Docker and make are enough.
#
# The binary is taken by platform: `make build ARCH=amd64|arm64` leaves it in
# target/image/linux/<arch>/. BuildKit sets TARGETARCH from --platform; the
# legacy builder needs `--build-arg TARGETARCH=...`, which `make image`
# passes. `docker build` alone fails with "target/image/linux/.../tinymon:
# not found" until `make build` has run for that architecture.

FROM scratch
ARG TARGETARCH
COPY target/image/linux/${TARGETARCH}/tinymon /tinymon
# nobody:nogroup; scratch has no /etc/passwd, so use the numbers.
USER 65534:65534
ENV TINYMON_LISTEN=0.0.0.0:8080
EXPOSE 8080
# scratch has no curl: the binary checks itself (GET /healthz, exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/tinymon", "healthcheck"]
ENTRYPOINT ["/tinymon"]
CMD ["serve"]
