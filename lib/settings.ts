/**
 * What each process may be configured with: variable, schema (default and unit), description.
 * The README's configuration table is checked against these tables by a test.
 */
import { z } from "zod"
import { bool, identifier, logLevel, port, positiveInt, secret, setting, url } from "./config"
import { DEFAULT_ACCESS_TTL_SECONDS, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "./protocol/tokens"

/**
 * How a process proves who it is to NATS: a user and password, a token, or a .creds file (user
 * JWT and NKey seed, for servers with decentralised auth); at most one. None: the server must
 * accept anonymous clients, as the embedded one of `npm start` does on loopback. And how it
 * checks the server: TLS is required with a `tls://` URL or any NATS_TLS_* setting.
 */
const natsClientFields = () => ({
  natsUser: setting(
    "NATS_USER",
    z.string().min(1).optional(),
    "NATS user name (its password: NATS_PASSWORD)",
  ),
  natsPassword: secret("nats-password", "NATS_PASSWORD", false, "NATS password of NATS_USER"),
  natsToken: secret("nats-token", "NATS_TOKEN", false, "NATS authentication token"),
  natsCreds: secret(
    "nats-creds",
    "NATS_CREDS",
    false,
    "the contents of a NATS .creds file (user JWT and NKey seed)",
  ),
  natsTlsCa: secret(
    "nats-tls-ca",
    "NATS_TLS_CA",
    false,
    "PEM certificate(s) of the authority that signed the NATS server's certificate, when the system's do not (TLS required)",
  ),
  natsTlsCert: secret(
    "nats-tls-cert",
    "NATS_TLS_CERT",
    false,
    "PEM client certificate, for a NATS server that verifies its clients (TLS required)",
  ),
  natsTlsKey: secret("nats-tls-key", "NATS_TLS_KEY", false, "PEM private key of NATS_TLS_CERT"),
})

/** Settings every function reads. Each function adds its own. */
export const functionFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  databaseUrl: secret("database-url", "DATABASE_URL", true, "PostgreSQL connection URL"),
  pgSchema: setting("PG_SCHEMA", identifier("cove"), "PostgreSQL schema holding Cove's tables"),
  pgPoolMax: setting("PG_POOL_MAX", positiveInt(5, 100), "PostgreSQL connections per function instance"),
  natsUrl: setting("NATS_URL", url(["nats:", "tls:"]).default("nats://127.0.0.1:4222"), "NATS server URL(s)"),
  ...natsClientFields(),
} as const

const powerOfTwo = (fallback: number) =>
  positiveInt(fallback, 2 ** 20).refine((n) => n > 1 && (n & (n - 1)) === 0, "must be a power of 2")

/** The auth function (functions/auth); docs/auth.md explains each choice. */
export const authFields = {
  ...functionFields,
  issuer: setting("AUTH_ISSUER", z.string().min(1).default(DEFAULT_ISSUER), "`iss` of access tokens"),
  audience: setting("AUTH_AUDIENCE", z.string().min(1).default(DEFAULT_AUDIENCE), "`aud` of access tokens"),
  accessTtlSeconds: setting(
    "AUTH_ACCESS_TTL_SECONDS",
    positiveInt(DEFAULT_ACCESS_TTL_SECONDS, 86_400),
    "lifetime of an access token, in seconds",
  ),
  refreshTtlSeconds: setting(
    "AUTH_REFRESH_TTL_SECONDS",
    positiveInt(30 * 86_400, 365 * 86_400),
    "lifetime of a refresh token from its last use, in seconds",
  ),
  registration: setting(
    "AUTH_REGISTRATION",
    z.enum(["open", "admin"], { message: "must be open or admin" }).default("admin"),
    "who may register: anyone (open) or only an admin (admin); the first account is always open",
  ),
  keyEncryptionKey: secret(
    "auth-key-encryption-key",
    "AUTH_KEY_ENCRYPTION_KEY",
    true,
    "32 random bytes, base64 or hex, that encrypt the token signing keys in PostgreSQL",
  ),
  scryptN: setting("AUTH_SCRYPT_N", powerOfTwo(32_768), "scrypt cost N for new password hashes"),
  scryptR: setting("AUTH_SCRYPT_R", positiveInt(8, 64), "scrypt block size r for new password hashes"),
  scryptP: setting("AUTH_SCRYPT_P", positiveInt(3, 16), "scrypt parallelism p for new password hashes"),
  hashConcurrency: setting(
    "AUTH_HASH_CONCURRENCY",
    positiveInt(2, 64),
    "password hashes computed at once per instance",
  ),
  hashQueueMax: setting(
    "AUTH_HASH_QUEUE_MAX",
    positiveInt(64, 10_000),
    "password hashes waiting per instance before requests are refused (503)",
  ),
  loginAccountFree: setting(
    "AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS",
    positiveInt(5, 1_000),
    "failed logins per username before delays start",
  ),
  loginAddressFree: setting(
    "AUTH_LOGIN_ADDRESS_FREE_ATTEMPTS",
    positiveInt(50, 100_000),
    "failed logins per client address before delays start",
  ),
  loginBaseDelayMs: setting(
    "AUTH_LOGIN_BASE_DELAY_MS",
    positiveInt(1_000),
    "first delay after the free attempts, in ms; it doubles with each further failure",
  ),
  loginMaxDelayMs: setting("AUTH_LOGIN_MAX_DELAY_MS", positiveInt(900_000), "longest login delay, in ms"),
  loginWindowMs: setting(
    "AUTH_LOGIN_WINDOW_MS",
    positiveInt(3_600_000),
    "failure counts are forgotten after this long without an attempt, in ms",
  ),
} as const

/** The conversations function. */
export const conversationsFields = {
  ...functionFields,
  issuer: authFields.issuer,
  audience: authFields.audience,
  maxMembers: setting(
    "CONVERSATIONS_MAX_MEMBERS",
    positiveInt(10_000, 100_000),
    "most members a group may have, its owner included",
  ),
} as const

/** The messages function (history and integrator sends). */
export const messagesFields = {
  ...functionFields,
  issuer: authFields.issuer,
  audience: authFields.audience,
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
  webEdgeUrl: setting(
    "COVE_WEB_EDGE_URL",
    url(["ws:", "wss:"]).optional(),
    "the edge's WebSocket URL as the web app's browsers reach it (default: ws://<the page's host name>:<COVE_EDGE_PORT>/v1/ws)",
  ),
  natsPort: setting("COVE_NATS_PORT", port(0), "embedded nats-server port (0: any free port)"),
  pgPort: setting("COVE_PG_PORT", port(0), "embedded PostgreSQL port (0: any free port)"),
  s3Port: setting("COVE_S3_PORT", port(0), "embedded S3 store port (0: any free port)"),
  natsUrl: setting(
    "NATS_URL",
    url(["nats:", "tls:"]).optional(),
    "use this NATS server instead of starting one",
  ),
  ...natsClientFields(),
  natsServerBin: setting("NATS_SERVER_BIN", z.string().default("nats-server"), "nats-server binary to start"),
  path: setting(
    "PATH",
    z.string().default("/usr/local/bin:/usr/bin:/bin"),
    "where nats-server is looked for",
  ),
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

/** `npm run migrate` / `node build/migrate.mjs`. */
export const migrateFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  databaseUrl: secret(
    "database-url",
    "DATABASE_URL",
    false,
    "PostgreSQL to migrate (default: the running `npm start` stack's)",
  ),
  pgSchema: setting("PG_SCHEMA", identifier("cove"), "PostgreSQL schema holding Cove's tables"),
  dataDir: setting("COVE_DATA_DIR", z.string().default("./.cove"), "the local stack's data folder"),
} as const

/** The connector run on its own (production), next to an OpenFaaS gateway. */
export const connectorFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  natsUrl: setting("NATS_URL", url(["nats:", "tls:"]).default("nats://127.0.0.1:4222"), "NATS server URL(s)"),
  ...natsClientFields(),
  gatewayUrl: setting(
    "COVE_GATEWAY_URL",
    url(["http:", "https:"]).default("http://127.0.0.1:8080"),
    "OpenFaaS gateway",
  ),
  stackFile: setting("COVE_STACK_FILE", z.string().default("./stack.yml"), "the OpenFaaS stack file"),
  metricsPort: setting("COVE_CONNECTOR_METRICS_PORT", port(8082), "connector /metrics and /healthz"),
} as const

/** A comma-separated list of web origins (`https://chat.example.com`), normalised to `URL.origin`. */
const originList = z
  .string()
  .transform((text) => text.split(",").map((o) => o.trim()))
  .refine(
    (list) =>
      list.every((o) => URL.canParse(o) && /^https?:$/.test(new URL(o).protocol) && new URL(o).origin === o),
    "must be http(s) origins without a path, separated by commas (e.g. https://chat.example.com)",
  )
  .optional()

/** The edge (gateway/); docs/protocol.md gives clients the limits below. */
export const gatewayFields = {
  logLevel: setting("LOG_LEVEL", logLevel, "log level"),
  host: setting("COVE_EDGE_HOST", z.string().default("127.0.0.1"), "address the edge binds"),
  port: setting("COVE_EDGE_PORT", port(8081), "the edge: /v1/ws, /healthz, /metrics"),
  webPort: setting(
    "COVE_GATEWAY_PORT",
    port(8080),
    "port of the deployment's own web origin, allowed by default (see COVE_ALLOWED_ORIGINS)",
  ),
  allowedOrigins: setting(
    "COVE_ALLOWED_ORIGINS",
    originList,
    "web origins that may open sockets (default: http://127.0.0.1:<COVE_GATEWAY_PORT> and http://localhost:<COVE_GATEWAY_PORT>); requests without Origin are allowed",
  ),
  natsUrl: setting("NATS_URL", url(["nats:", "tls:"]).default("nats://127.0.0.1:4222"), "NATS server URL(s)"),
  ...natsClientFields(),
  functionsUrl: setting(
    "COVE_FUNCTIONS_URL",
    url(["http:", "https:"]).default("http://127.0.0.1:8080"),
    "where the edge reaches the functions (/function/conversations for a connecting user's conversations)",
  ),
  controlMaxAgeMs: setting(
    "COVE_EDGE_CONTROL_MAX_AGE_MS",
    positiveInt(3_600_000),
    "how long the COVE_CONTROL stream keeps membership and revocation events for edges that lost NATS for a while (used when the first edge creates it), in ms",
  ),
  presenceGraceMs: setting(
    "COVE_EDGE_PRESENCE_GRACE_MS",
    positiveInt(10_000),
    "how long a user whose last socket closed stays online (a reload is not an absence), in ms",
  ),
  presenceHeartbeatMs: setting(
    "COVE_EDGE_PRESENCE_HEARTBEAT_MS",
    positiveInt(10_000),
    "how often an edge renews its users' presence (keys live 3 of these) and how often one edge sweeps for the users of dead edges, announced offline about 4⅝ of these plus the grace period after their edge died, in ms",
  ),
  presenceMaxMembers: setting(
    "COVE_EDGE_PRESENCE_MAX_MEMBERS",
    positiveInt(1_000),
    "presence changes are announced in conversations of at most this many members (larger groups: clients ask with `who`)",
  ),
  functionsTimeoutMs: setting(
    "COVE_EDGE_FUNCTIONS_TIMEOUT_MS",
    positiveInt(5_000),
    "how long the edge waits for a function, in ms",
  ),
  jwksUrl: setting(
    "COVE_JWKS_URL",
    url(["http:", "https:"]).default("http://127.0.0.1:8080/function/auth/jwks"),
    "the auth function's JWK Set",
  ),
  jwksCooldownMs: setting(
    "COVE_JWKS_COOLDOWN_MS",
    positiveInt(30_000),
    "least time between JWK Set fetches when a token names an unknown key, in ms",
  ),
  jwksMaxAgeMs: setting("COVE_JWKS_MAX_AGE_MS", positiveInt(600_000), "JWK Set cache lifetime, in ms"),
  jwksTimeoutMs: setting("COVE_JWKS_TIMEOUT_MS", positiveInt(5_000), "JWK Set fetch timeout, in ms"),
  jwtIssuer: setting(
    "COVE_JWT_ISSUER",
    z.string().min(1).default(DEFAULT_ISSUER),
    "required `iss` of tokens",
  ),
  jwtAudience: setting(
    "COVE_JWT_AUDIENCE",
    z.string().min(1).default(DEFAULT_AUDIENCE),
    "required `aud` of tokens",
  ),
  revocationMemoryMs: setting(
    "COVE_EDGE_REVOCATION_MEMORY_MS",
    positiveInt((DEFAULT_ACCESS_TTL_SECONDS + 60) * 1000),
    "how long the edge refuses tokens issued before a revocation; at least the access-token lifetime, in ms",
  ),
  maxFrameBytes: setting(
    "COVE_EDGE_MAX_FRAME_BYTES",
    positiveInt(65_536, 16 * 1024 * 1024),
    "largest client frame",
  ),
  firstFrameTimeoutMs: setting(
    "COVE_EDGE_FIRST_FRAME_TIMEOUT_MS",
    positiveInt(10_000),
    "time a client has after hello to send its first frame, in ms",
  ),
  idleTimeoutMs: setting(
    "COVE_EDGE_IDLE_TIMEOUT_MS",
    positiveInt(120_000).refine((ms) => ms >= 8_000, "must be at least 8000 (uWS counts in 4 s steps)"),
    "a socket with no traffic for this long is dropped; the edge pings before that, in ms",
  ),
  ratePerSec: setting("COVE_EDGE_RATE_PER_SEC", positiveInt(20), "frames per second per socket (sustained)"),
  rateBurst: setting("COVE_EDGE_RATE_BURST", positiveInt(40), "frames per socket in a burst"),
  userRatePerSec: setting(
    "COVE_EDGE_USER_RATE_PER_SEC",
    positiveInt(50),
    "frames per second per user over all their sockets on one edge (sustained)",
  ),
  userRateBurst: setting("COVE_EDGE_USER_RATE_BURST", positiveInt(100), "frames per user in a burst"),
  rateStrikes: setting(
    "COVE_EDGE_RATE_STRIKES",
    positiveInt(10),
    "rate-limited frames tolerated (regained at one per second) before the socket is closed",
  ),
  maxSocketsPerUser: setting(
    "COVE_EDGE_MAX_SOCKETS_PER_USER",
    positiveInt(10),
    "open sockets per user on one edge; a new one closes the oldest",
  ),
  maxBackpressureBytes: setting(
    "COVE_EDGE_MAX_BACKPRESSURE_BYTES",
    positiveInt(262_144),
    "bytes waiting to be sent to one socket before it is closed as too slow",
  ),
  drainMs: setting(
    "COVE_EDGE_DRAIN_MS",
    positiveInt(10_000),
    "how long SIGTERM waits for clients to leave before exiting, in ms",
  ),
} as const

/** A comma-separated list of MIME types; `type/*` allows a whole family. */
const mimeList = z
  .string()
  .transform((text) =>
    text
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ""),
  )
  .refine(
    (list) => list.length > 0 && list.every((t) => /^[a-z0-9][\w.+-]*\/(\*|[a-z0-9][\w.+-]*)$/.test(t)),
    "must be MIME types separated by commas (e.g. image/*,application/pdf)",
  )

/**
 * What may be uploaded when nothing is configured. Left out on purpose: types a browser would
 * run or render as a page from the store's origin (text/html, image/svg+xml, XML, JavaScript).
 */
const DEFAULT_FILE_TYPES =
  "image/png,image/jpeg,image/gif,image/webp,image/avif,image/heic,audio/*,video/*,application/pdf,text/plain,text/csv,application/zip,application/gzip,application/x-7z-compressed,application/json,application/msword,application/vnd.openxmlformats-officedocument.wordprocessingml.document,application/vnd.ms-excel,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,application/vnd.ms-powerpoint,application/vnd.openxmlformats-officedocument.presentationml.presentation,application/vnd.oasis.opendocument.text,application/vnd.oasis.opendocument.spreadsheet,application/octet-stream"

/** The S3-compatible store, for the functions that use it (the same names as the local stack's). */
const s3Fields = {
  s3Endpoint: setting(
    "S3_ENDPOINT",
    url(["http:", "https:"]).optional(),
    "S3 store URL (MinIO, Ceph RGW, ...); unset: AWS S3 in S3_REGION",
  ),
  s3Region: stackFields.s3Region,
  s3Bucket: stackFields.s3Bucket,
  // Required here: a function has no embedded store to fall back on.
  s3AccessKeyId: secret("s3-access-key-id", "S3_ACCESS_KEY_ID", true, "S3 access key"),
  s3SecretAccessKey: secret("s3-secret-access-key", "S3_SECRET_ACCESS_KEY", true, "S3 secret key"),
} as const

/** The files function (functions/files); docs/files.md explains each choice. */
export const filesFields = {
  ...functionFields,
  issuer: authFields.issuer,
  audience: authFields.audience,
  ...s3Fields,
  encryption: setting(
    "S3_SERVER_SIDE_ENCRYPTION",
    bool(true),
    "ask the store to encrypt objects (SSE-S3) as the bucket default; stores without it are used unencrypted, with a warning",
  ),
  corsOrigins: setting(
    "FILES_CORS_ORIGINS",
    originList,
    "web origins whose pages upload straight to the store (the bucket's CORS rules); unset: left as they are",
  ),
  maxBytes: setting("FILES_MAX_BYTES", positiveInt(2 * 1024 ** 3, 5 * 1024 ** 4), "largest file, in bytes"),
  allowedTypes: setting(
    "FILES_ALLOWED_TYPES",
    mimeList.default(mimeList.parse(DEFAULT_FILE_TYPES)),
    "content types that may be uploaded; type/* allows a family",
  ),
  multipartThreshold: setting(
    "FILES_MULTIPART_THRESHOLD_BYTES",
    positiveInt(100 * 1024 ** 2, 5 * 1024 ** 3),
    "files larger than this are uploaded in parts, in bytes",
  ),
  partBytes: setting(
    "FILES_PART_BYTES",
    positiveInt(16 * 1024 ** 2, 5 * 1024 ** 3).refine((n) => n >= 5 * 1024 ** 2, "must be at least 5 MiB"),
    "size of each part of a multipart upload (at least 5 MiB), in bytes",
  ),
  uploadTtlSeconds: setting(
    "FILES_UPLOAD_TTL_SECONDS",
    positiveInt(900, 7 * 86_400),
    "lifetime of a presigned upload URL, in seconds",
  ),
  downloadTtlSeconds: setting(
    "FILES_DOWNLOAD_TTL_SECONDS",
    positiveInt(300, 7 * 86_400),
    "lifetime of a presigned download URL, in seconds",
  ),
  pendingMaxAgeSeconds: setting(
    "FILES_PENDING_MAX_AGE_SECONDS",
    positiveInt(86_400),
    "uploads not completed after this long are deleted (record and object), in seconds",
  ),
  unreferencedMaxAgeSeconds: setting(
    "FILES_UNREFERENCED_MAX_AGE_SECONDS",
    positiveInt(86_400),
    "ready files that no message shows (never sent, or recalled) are deleted this long after upload, in seconds",
  ),
  sweepIntervalSeconds: setting(
    "FILES_SWEEP_INTERVAL_SECONDS",
    positiveInt(600),
    "each instance sweeps expired uploads at most this often, in seconds",
  ),
} as const

/** The thumbnails event function (functions/thumbnails). */
export const thumbnailsFields = {
  ...functionFields,
  ...s3Fields,
  maxPixels: setting("THUMBNAIL_MAX_PX", positiveInt(320, 2048), "longest side of a thumbnail, in pixels"),
  maxSourceBytes: setting(
    "THUMBNAIL_MAX_SOURCE_BYTES",
    positiveInt(50 * 1024 ** 2),
    "images larger than this get no thumbnail, in bytes",
  ),
} as const

/** The index function (functions/index): PostgreSQL only. */
export const indexFields = functionFields

/** The search function (functions/search); docs/search.md gives the query rules. */
export const searchFields = {
  ...functionFields,
  issuer: authFields.issuer,
  audience: authFields.audience,
  maxQueryChars: setting(
    "SEARCH_MAX_QUERY_CHARS",
    positiveInt(256, 4_096),
    "longest search query, in characters; longer ones are refused (SEARCH_QUERY_TOO_LONG)",
  ),
  windowMin: setting(
    "SEARCH_WINDOW_MIN",
    positiveInt(1_000, 1_000_000),
    "a query with at least this many hits in the last 1, 3 or 12 months is ranked within that window first (docs/search.md)",
  ),
} as const
