# Thwonk in a container: one image, every role (`serve`, `ingress`, `runner`, `egress`, `api`)
# chosen by the command. See docker-compose.yml for the scale-out deployment.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin thwonk

FROM debian:bookworm-slim
# redis-server only for `serve`'s embedded default (a private Redis in the data directory);
# the compose deployment uses its own Redis service.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/thwonk --shell /usr/sbin/nologin thwonk \
    && mkdir -p /var/lib/thwonk && chown thwonk:thwonk /var/lib/thwonk
COPY --from=build /src/target/release/thwonk /usr/local/bin/thwonk
COPY config/thwonk.toml /usr/local/share/thwonk/thwonk.toml
USER thwonk
WORKDIR /var/lib/thwonk
ENV THWONK_DATA_DIR=/var/lib/thwonk
VOLUME ["/var/lib/thwonk"]
EXPOSE 2525 8025
ENTRYPOINT ["/usr/local/bin/thwonk"]
CMD ["serve"]
