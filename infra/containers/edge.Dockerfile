# The edge (gateway/): one file plus the native uWebSockets.js module. Node 20 only: the
# uWebSockets.js v20.30 binaries are built for Node 16, 18 and 20, and the edge refuses to
# start on the slower JavaScript fallback.
#
#   npm run build
#   docker build -f infra/containers/edge.Dockerfile -t cove/edge:0.1.0 .
FROM node:20-bookworm-slim
WORKDIR /home/app
RUN npm install --no-save --no-audit --no-fund "uWebSockets.js@npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0" \
    && npm cache clean --force
COPY build/gateway.mjs build/gateway.mjs.map ./
USER node
ENV COVE_EDGE_HOST="0.0.0.0" COVE_EDGE_PORT="8081"
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "/home/app/gateway.mjs"]
