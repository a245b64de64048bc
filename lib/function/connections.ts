/**
 * What every function connects to: a PostgreSQL pool in Cove's schema and NATS. Opened on the
 * first request and kept while the process is warm (lazy ports in the harness).
 */

import type { S3Client } from "@aws-sdk/client-s3"
import type { NatsConnection } from "nats"
import type pg from "pg"
import { connectNats, type NatsClientSettings } from "../adapters/nats"
import { natsControlPublisher } from "../adapters/nats-control"
import { createPool } from "../adapters/pg"
import { type ControlOutboxRelay, pgControlOutbox } from "../adapters/pg-control-outbox"
import { createS3Client } from "../adapters/s3"
import type { Logger } from "../log"
import type { ControlEvent } from "../ports"

export type FunctionConnections = { readonly pool: pg.Pool; readonly nc: NatsConnection }

type PgConfig = { databaseUrl: string; pgSchema: string; pgPoolMax: number }

/** A function's PostgreSQL pool, for functions that need nothing else. */
export function openPool(name: string, config: PgConfig, log: Logger, pipeline = false): pg.Pool {
  return createPool({
    pipeline,
    url: config.databaseUrl,
    schema: config.pgSchema,
    maxConnections: config.pgPoolMax,
    applicationName: `cove-${name}`,
    onIdleError: (err) => log.warn({ err }, "idle PostgreSQL connection failed; it will be replaced"),
  })
}

export async function openConnections(
  name: string,
  config: PgConfig & NatsClientSettings & { natsUrl: string },
  log: Logger,
  options: { pipeline?: boolean } = {},
): Promise<FunctionConnections> {
  const pool = openPool(name, config, log, options.pipeline === true)
  const nc = await connectNats(config.natsUrl, `cove-${name}`, log, config)
  return { pool, nc }
}

/**
 * How often a warm instance publishes what the control outbox still holds (membership changes
 * and revocations whose publish failed, or whose process died before it). Every instance of the
 * functions that queue them relays; the advisory locks keep them from publishing a key twice.
 */
export const CONTROL_RELAY_INTERVAL_MS = 5_000

/** The control outbox of a function that queues events for the edges, its relay running. */
export function openControlOutbox(
  c: FunctionConnections,
  log: Logger,
  kinds: readonly ControlEvent["kind"][],
): ControlOutboxRelay {
  const outbox = pgControlOutbox(c.pool, natsControlPublisher(c.nc), log, { kinds })
  outbox.start(CONTROL_RELAY_INTERVAL_MS)
  return outbox
}

/** A function's S3 client, from the settings the files and thumbnails functions share. */
export function openS3(config: {
  s3Endpoint: string | undefined
  s3Region: string
  s3AccessKeyId: string
  s3SecretAccessKey: string
}): S3Client {
  return createS3Client({
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    accessKeyId: config.s3AccessKeyId,
    secretAccessKey: config.s3SecretAccessKey,
    // Path-style works with every self-hosted store (MinIO, Ceph RGW, SeaweedFS).
    forcePathStyle: true,
  })
}

export async function closeConnections(c: FunctionConnections): Promise<void> {
  await c.nc.drain()
  await c.pool.end()
}
