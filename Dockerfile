# Multi-stage build of the policyc agent image.
#   docker build -t REGISTRY/policyc:0.1.0 .
#
# What the binary needs at run time, and nothing else:
#   - glibc (libc, libm) and libgcc_s: in every Debian image (`ldd target/release/policyc`);
#   - the `nft` binary on PATH: the agent hands each transaction to `nft -j -f -` and checks at
#     start-up that `nft --version` runs (tests/agent_cli.rs covers the error when it does not);
#   - the `conntrack` binary (conntrack-tools), only with --flush-conntrack (checked at start-up);
#   - CAP_NET_ADMIN and the node's network namespace: given by the DaemonSet, not the image.
# Both stages are Debian 12 (bookworm), so the binary links against the glibc it runs with, and
# nft is 1.0.6, the version the project's kernel tests run.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked -p policyc --bin policyc

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables conntrack \
 && rm -rf /var/lib/apt/lists/* \
 && nft --version \
 && conntrack --version
COPY --from=build /src/target/release/policyc /usr/local/bin/policyc
RUN ["/usr/local/bin/policyc", "--version"]
ENTRYPOINT ["/usr/local/bin/policyc"]
CMD ["agent"]
