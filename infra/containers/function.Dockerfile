# One Cove function as a plain container: the MIT-licensed of-watchdog in HTTP mode in front of
# Cove's function server, which serves the bundle's handler.js exactly as under OpenFaaS and
# under `npm start`. No OpenFaaS gateway is needed: route /function/<name>/* to port 8080.
#
#   npm run build
#   docker build -f infra/containers/function.Dockerfile --build-arg FUNCTION=auth -t cove/auth:0.1.0 .
#
# Pin WATCHDOG_IMAGE to the of-watchdog release your registry mirrors (ghcr.io/openfaas/of-watchdog).
ARG WATCHDOG_IMAGE=ghcr.io/openfaas/of-watchdog:0.10.7
FROM ${WATCHDOG_IMAGE} AS watchdog

# Node 20: the same runtime as the OpenFaaS node20 template.
FROM node:20-bookworm-slim
ARG FUNCTION
COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog
WORKDIR /home/app
COPY build/function-server.mjs build/function-server.mjs.map ./
COPY build/functions/${FUNCTION}/ ./function/
# Run-time dependencies a bundle cannot inline (sharp for thumbnails); nothing for the others.
RUN cd function && npm install --omit=dev --no-audit --no-fund && npm cache clean --force
USER node
ENV fprocess="node --enable-source-maps /home/app/function-server.mjs" \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true" \
    mode="http" \
    upstream_url="http://127.0.0.1:3000" \
    PORT="3000" \
    COVE_HANDLER="/home/app/function/handler.js" \
    exec_timeout="10s" \
    read_timeout="10s" \
    write_timeout="10s" \
    healthcheck_interval="5s"
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:8080/_/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["fwatchdog"]
