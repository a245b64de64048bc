/** For files tests: the files function's routes over real PostgreSQL, NATS and an S3 store. */
import { createHash, randomBytes } from "node:crypto"
import type { S3Client } from "@aws-sdk/client-s3"
import type { NatsConnection } from "nats"
import type { Test } from "tap"
import { type FilesLimits, sweepSchedule } from "../../functions/files/handler"
import { type Ports, routes } from "../../functions/files/routes"
import { natsFileEvents } from "../../lib/adapters/nats-files"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgFileStore } from "../../lib/adapters/pg-files"
import { s3ObjectStore } from "../../lib/adapters/s3-objects"
import { defineFunction } from "../../lib/function/harness"
import type { PresignedUpload } from "../../lib/ports"
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../lib/protocol/tokens"
import { type AuthFixture, serveForTest } from "./auth"
import { testLog } from "./servers"

export const MiB = 1024 ** 2

export const testLimits: FilesLimits = {
  maxBytes: 64 * MiB,
  allowedTypes: ["image/*", "application/pdf", "text/plain", "application/octet-stream"],
  multipartThreshold: 6 * MiB,
  partBytes: 5 * MiB,
  uploadTtlSeconds: 300,
  downloadTtlSeconds: 300,
  pendingMaxAgeSeconds: 86_400,
  unreferencedMaxAgeSeconds: 2 * 86_400,
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

export type User = { id: string; token: string }

/** Serves the files routes; returns the base URL and the ports it uses. */
export async function serveFiles(
  t: Test,
  o: { auth: AuthFixture; nc: NatsConnection; s3: S3Client; bucket: string; limits?: Partial<FilesLimits> },
): Promise<{ base: string; ports: Ports }> {
  const ports: Ports = {
    files: pgFileStore(o.auth.pool),
    objects: s3ObjectStore(o.s3, o.bucket),
    events: natsFileEvents(o.nc),
    conversations: pgConversationStore(o.auth.pool),
    auth: pgAuthenticator(
      o.auth.pool,
      { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE },
      o.auth.clock.now,
    ),
    limits: { ...testLimits, ...o.limits },
    now: o.auth.clock.now,
    newId: () => randomBytes(16).toString("base64url"),
    sweepDue: sweepSchedule(Number.POSITIVE_INFINITY).due,
  }
  const handler = defineFunction({ name: "files", log: testLog, ports: async () => ports, routes })
  return { base: await serveForTest(t, handler, 16_384), ports }
}

export function caller(base: string) {
  return (who: User, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method,
      redirect: "manual",
      headers: { "content-type": "application/json", authorization: `Bearer ${who.token}`, ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
}

/** Sends the bytes as a client would: PUT with the given headers, or a form POST with the fields first. */
export function sendBytes(upload: PresignedUpload, bytes: Uint8Array, name = "file"): Promise<Response> {
  if (upload.method === "PUT") {
    return fetch(upload.url, { method: "PUT", headers: { ...upload.headers }, body: bytes })
  }
  const form = new FormData()
  for (const [k, v] of Object.entries(upload.fields ?? {})) form.append(k, v)
  form.append("file", new Blob([bytes], { type: upload.fields?.["Content-Type"] ?? "" }), name)
  return fetch(upload.url, { method: "POST", body: form })
}
