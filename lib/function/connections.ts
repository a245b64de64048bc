/**
 * What every function connects to: a PostgreSQL pool in Cove's schema and NATS. Opened on the
 * first request and kept while the process is warm (lazy ports in the harness).
 */

import type { S3Client } from "@aws-sdk/client-s3"
import type { NatsConnection } from "nats"
import type pg from "pg"
import { connectNats } from "../adapters/nats"
import { createPool } from "../adapters/pg"
import { createS3Client } from "../adapters/s3"
import type { Logger } from "../log"

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
  config: PgConfig & { natsUrl: string },
  log: Logger,
  options: { pipeline?: boolean } = {},
): Promise<FunctionConnections> {
  const pool = openPool(name, config, log, options.pipeline === true)
  const nc = await connectNats(config.natsUrl, `cove-${name}`, log)
  return { pool, nc }
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
