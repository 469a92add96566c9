# Multi-stage build of the policyc agent image.
#   docker build -t policyc:0.1.0 .
# Build stage: the release binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p policyc --bin policyc

# Runtime: Debian slim plus the nft binary the agent drives (and its libraries). Nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/policyc /usr/local/bin/policyc
# `policyc agent` checks at start-up that it can run nft (see --nft) and exits with a clear error if not.
ENTRYPOINT ["/usr/local/bin/policyc"]
CMD ["agent"]
