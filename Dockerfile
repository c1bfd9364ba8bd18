# tinymon in an empty image: the static binary and nothing else.
# Build with `make image` (or let `docker compose up` build it).

FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu --bin tinymon

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/tinymon /tinymon
# nobody:nogroup; scratch has no /etc/passwd, so use the numbers.
USER 65534:65534
ENV TINYMON_LISTEN=0.0.0.0:8080
EXPOSE 8080
# scratch has no curl: the binary checks itself (GET /healthz, exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/tinymon", "healthcheck"]
ENTRYPOINT ["/tinymon"]
CMD ["serve"]
