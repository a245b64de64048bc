/**
 * What each process may be configured with: variable, schema (default and unit), description.
 * The README's configuration table is checked against these tables by a test.
 */
import { z } from "zod"
import { identifier, logLevel, port, positiveInt, secret, setting, url } from "./config"

/** Settings every function reads. Each function adds its own. */
export const functionFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  databaseUrl: secret("database-url", "DATABASE_URL", true, "PostgreSQL connection URL"),
  pgSchema: setting("PG_SCHEMA", identifier("cove"), "PostgreSQL schema holding Cove's tables"),
  pgPoolMax: setting("PG_POOL_MAX", positiveInt(5, 100), "PostgreSQL connections per function instance"),
  natsUrl: setting("NATS_URL", url(["nats:", "tls:"]).default("nats://127.0.0.1:4222"), "NATS server URL(s)"),
} as const

/** The function server that wraps a bundle (the of-watchdog upstream). */
export const functionServerFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  port: setting("PORT", port(3000), "port the function server listens on (of-watchdog's upstream)"),
  host: setting("COVE_FUNCTION_HOST", z.string().default("127.0.0.1"), "address the function server binds"),
  handler: setting("COVE_HANDLER", z.string().default("./handler.js"), "path of the bundle's handler.js"),
  maxJsonSize: setting(
    "MAX_JSON_SIZE",
    z.string().default("100kb"),
    "largest accepted body (same as the node20 template)",
  ),
  drainMs: setting(
    "COVE_DRAIN_MS",
    positiveInt(10_000),
    "how long SIGTERM waits for requests in flight, in ms",
  ),
} as const

/** `npm start`: the local stack. */
export const stackFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  dataDir: setting(
    "COVE_DATA_DIR",
    z.string().default("./.cove"),
    "folder for all local data (NATS, PostgreSQL, S3)",
  ),
  gatewayPort: setting(
    "COVE_GATEWAY_PORT",
    port(8080),
    "function runtime: /function/<name>, /_/health, /metrics",
  ),
  edgePort: setting("COVE_EDGE_PORT", port(8081), "the edge: /v1/ws, /healthz, /metrics"),
  natsPort: setting("COVE_NATS_PORT", port(0), "embedded nats-server port (0: any free port)"),
  pgPort: setting("COVE_PG_PORT", port(0), "embedded PostgreSQL port (0: any free port)"),
  s3Port: setting("COVE_S3_PORT", port(0), "embedded S3 store port (0: any free port)"),
  natsUrl: setting(
    "NATS_URL",
    url(["nats:", "tls:"]).optional(),
    "use this NATS server instead of starting one",
  ),
  natsServerBin: setting("NATS_SERVER_BIN", z.string().default("nats-server"), "nats-server binary to start"),
  databaseUrl: secret(
    "database-url",
    "DATABASE_URL",
    false,
    "use this PostgreSQL instead of the embedded one",
  ),
  pgSchema: setting("PG_SCHEMA", identifier("cove"), "PostgreSQL schema holding Cove's tables"),
  s3Endpoint: setting(
    "S3_ENDPOINT",
    url(["http:", "https:"]).optional(),
    "use this S3 store instead of the embedded one",
  ),
  s3Region: setting("S3_REGION", z.string().default("us-east-1"), "S3 region"),
  s3Bucket: setting(
    "S3_BUCKET",
    z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid bucket name")
      .default("cove"),
    "bucket for files",
  ),
  s3AccessKeyId: secret(
    "s3-access-key-id",
    "S3_ACCESS_KEY_ID",
    false,
    "S3 access key (required with S3_ENDPOINT)",
  ),
  s3SecretAccessKey: secret(
    "s3-secret-access-key",
    "S3_SECRET_ACCESS_KEY",
    false,
    "S3 secret key (required with S3_ENDPOINT)",
  ),
  stackFile: setting(
    "COVE_STACK_FILE",
    z.string().default("./stack.yml"),
    "the OpenFaaS stack file to serve",
  ),
} as const

/** The connector run on its own (production), next to an OpenFaaS gateway. */
export const connectorFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  natsUrl: setting("NATS_URL", url(["nats:", "tls:"]).default("nats://127.0.0.1:4222"), "NATS server URL(s)"),
  gatewayUrl: setting(
    "COVE_GATEWAY_URL",
    url(["http:", "https:"]).default("http://127.0.0.1:8080"),
    "OpenFaaS gateway",
  ),
  stackFile: setting("COVE_STACK_FILE", z.string().default("./stack.yml"), "the OpenFaaS stack file"),
  metricsPort: setting("COVE_CONNECTOR_METRICS_PORT", port(8082), "connector /metrics and /healthz"),
} as const
