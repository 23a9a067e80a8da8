# Thwonk in a container: one image, every role (`serve`, `ingress`, `runner`, `egress`, `api`)
# chosen by the command. See docker-compose.yml for the scale-out deployment.
#
#   docker build -t thwonk:latest .            # compiles in the `build` stage (the default)
#
# Stages: `runtime-base` is the slim Debian system with the thwonk user; `prebuilt` copies a
# binary built on the host instead of compiling here (`docker build --target prebuilt` with a
# context holding `prebuilt/thwonk`, a glibc binary built on bookworm or older): the
# deployment test (scripts/test-deploy-docker.sh) uses it, since it runs where no Rust image
# can be pulled. `runtime`, the last stage, is what a plain `docker build` makes. The base
# images are build arguments only so that the test can point them at local stand-ins.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS runtime-base
# redis-server only for `serve`'s embedded default (a private Redis in the data directory);
# the compose deployment uses its own Redis service.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/thwonk --shell /usr/sbin/nologin thwonk \
    && mkdir -p /var/lib/thwonk && chown thwonk:thwonk /var/lib/thwonk && chmod 0700 /var/lib/thwonk
COPY config/thwonk.toml /usr/local/share/thwonk/thwonk.toml
USER thwonk
WORKDIR /var/lib/thwonk
ENV THWONK_DATA_DIR=/var/lib/thwonk
# Logs are one JSON object per line in a container (`docker logs`, log drivers); set
# THWONK_LOG_FORMAT=text for the human-readable form.
ENV THWONK_LOG_FORMAT=json
VOLUME ["/var/lib/thwonk"]
EXPOSE 2525 8025
ENTRYPOINT ["/usr/local/bin/thwonk"]
CMD ["serve"]

# A binary built on the host (see above). Comes before `build` so that a builder without
# BuildKit, which builds every stage up to the target (used or not), does not compile for it.
# The config file is named too because that builder also builds this stage for a plain
# `docker build .`, where there is no prebuilt/ (a COPY whose sources all match nothing fails).
FROM runtime-base AS prebuilt
COPY config/thwonk.toml prebuil[t]/thwonk /usr/local/bin/

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin thwonk

FROM runtime-base AS runtime
COPY --from=build /src/target/release/thwonk /usr/local/bin/thwonk
