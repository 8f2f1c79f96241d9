# flowtap live agent image.
#
#   docker build -t flowtap .
#   docker run -d --name flowtap --network host --cap-drop ALL --cap-add NET_RAW \
#     -e FLOWTAP_INTERFACE=eth0 -e FLOWTAP_LISTEN=0.0.0.0:9877 flowtap
#
# Build stage: libpcap-dev, make, g++, python3 compile the patched `cap`
# binding; scripts/docker-build.sh does every build step (CI runs the same
# script without Docker, so the two stay in step: keep the COPY list equal to
# the script's SOURCES).
# Runtime stage: node and libpcap0.8 only; runs as the non-root user
# `flowtap` (uid 10001).
#
# Capabilities (docs/deploy.md): the runtime stage gives two copies of node
# file capabilities, because a non-root process gets none from
# `--cap-add` alone (Docker sets no ambient capabilities):
#   /usr/local/bin/flowtap-node        cap_net_raw            (the ENTRYPOINT)
#   /usr/local/bin/flowtap-node-procs  cap_net_raw, cap_sys_ptrace,
#                                      cap_dac_read_search    (process attribution
#                                      of other users' sockets; needs --pid host and
#                                      --cap-add SYS_PTRACE --cap-add DAC_READ_SEARCH)
# A file capability missing from the container's bounding set makes exec
# fail with "operation not permitted": add NET_RAW (and, for the -procs
# binary, the other two) when you drop ALL. Promiscuous mode needs nothing
# more than CAP_NET_RAW.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev make g++ python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# = scripts/docker-build.sh --sources
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY patches/ patches/
COPY scripts/docker-build.sh scripts/docker-build.sh
COPY bin/ bin/
COPY agent/ agent/
COPY parsers/ parsers/
COPY exporters/ exporters/
COPY bench/ bench/
COPY test/gen/ test/gen/
RUN scripts/docker-build.sh /opt/flowtap

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libcap2-bin \
 && cp /usr/local/bin/node /usr/local/bin/flowtap-node \
 && setcap cap_net_raw+ep /usr/local/bin/flowtap-node \
 && cp /usr/local/bin/node /usr/local/bin/flowtap-node-procs \
 && setcap cap_net_raw,cap_sys_ptrace,cap_dac_read_search+ep /usr/local/bin/flowtap-node-procs \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin flowtap \
 && install -d -o flowtap -g flowtap -m 0750 /var/lib/flowtap
COPY --from=build /opt/flowtap /opt/flowtap
USER 10001:10001
WORKDIR /var/lib/flowtap
# Every flag is also a FLOWTAP_* variable; set the listener here so HEALTHCHECK finds it.
# GLIBC_TUNABLES: transparent huge pages for the big flow-table buffers (~10 % faster with many flows).
ENV NODE_ENV=production \
    FLOWTAP_LISTEN=0.0.0.0:9877 \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1
EXPOSE 9877
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/node", "-e", "const l = process.env.FLOWTAP_LISTEN || '127.0.0.1:9877'; const port = l.slice(l.lastIndexOf(':') + 1); fetch('http://127.0.0.1:' + port + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flowtap-node", "/opt/flowtap/bin/flowtap.js", "run"]
