# The connector (JetStream -> /function/<name>) and the migration runner, from one image.
#
#   npm run build
#   docker build -f infra/containers/tools.Dockerfile -t cove/tools:0.1.0 .
#   docker run cove/tools:0.1.0 migrate.mjs     # a Job before each release
#   docker run cove/tools:0.1.0 connector.mjs   # long-running, next to the gateway
FROM node:20-bookworm-slim
WORKDIR /home/app
COPY build/connector.mjs build/connector.mjs.map build/migrate.mjs build/migrate.mjs.map stack.yml ./
COPY build/migrations/ ./migrations/
USER node
ENV COVE_STACK_FILE="/home/app/stack.yml"
ENTRYPOINT ["node", "--enable-source-maps"]
CMD ["connector.mjs"]
