import {
  type ConnectionOptions,
  connect,
  createInbox,
  credsAuthenticator,
  type NatsConnection,
  headers as natsHeaders,
} from "nats"
import { ConfigError } from "../config"
import type { Logger } from "../log"
import type { DeliveryBus } from "../ports"
import { HEADERS, PROTOCOL_VERSION, subjects } from "../protocol/subjects"
import { eventBytes } from "./nats-event-bytes"

/** A process's NATS credentials, as its settings give them (lib/settings.ts, natsCredentialFields). */
export type NatsCredentials = {
  readonly natsUser?: string | undefined
  readonly natsPassword?: string | undefined
  readonly natsToken?: string | undefined
  readonly natsCreds?: string | undefined
}

const encoder = new TextEncoder()

/** The connection options for `c`; a ConfigError names what does not fit together. */
export function natsAuthOptions(c: NatsCredentials): Partial<ConnectionOptions> {
  const problems: string[] = []
  if (c.natsPassword !== undefined && c.natsUser === undefined)
    problems.push("NATS_PASSWORD (secret nats-password) is set without NATS_USER")
  if (c.natsUser !== undefined && c.natsPassword === undefined)
    problems.push("NATS_USER is set without NATS_PASSWORD (secret nats-password)")
  const ways = [c.natsUser !== undefined, c.natsToken !== undefined, c.natsCreds !== undefined].filter(
    Boolean,
  )
  if (ways.length > 1)
    problems.push(
      "give one way to authenticate to NATS: NATS_USER and NATS_PASSWORD, NATS_TOKEN, or NATS_CREDS",
    )
  if (problems.length > 0) throw new ConfigError(problems)
  if (c.natsUser !== undefined && c.natsPassword !== undefined)
    return { user: c.natsUser, pass: c.natsPassword }
  if (c.natsToken !== undefined) return { token: c.natsToken }
  if (c.natsCreds !== undefined) return { authenticator: credsAuthenticator(encoder.encode(c.natsCreds)) }
  return {}
}

/**
 * Where a process's replies arrive: its own prefix, not the shared `_INBOX`, so that NATS can
 * let each process read only its own replies (PubAcks, JetStream API answers, pulled messages;
 * infra/nats/permissions.ts). `cove-edge` → `_INBOX_cove_edge`.
 */
export function inboxPrefixOf(connectionName: string): string {
  return `_INBOX_${connectionName.replace(/[^A-Za-z0-9]/g, "_")}`
}

/** A new reply subject of the connection, under its prefix. */
export function inboxOf(nc: NatsConnection): string {
  // nats.js keeps the options on the connection without typing them.
  const prefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix
  return createInbox(prefix)
}

export async function connectNats(
  url: string,
  name: string,
  log: Logger,
  credentials: NatsCredentials = {},
): Promise<NatsConnection> {
  const nc = await connect({
    servers: url.split(","),
    name,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: false,
    inboxPrefix: inboxPrefixOf(name),
    ...natsAuthOptions(credentials),
  })
  void (async () => {
    for await (const s of nc.status()) log.info({ nats: s.type, data: String(s.data) }, "nats status")
  })()
  return nc
}

export function natsDeliveryBus(nc: NatsConnection): DeliveryBus {
  return {
    async deliver(events) {
      const h = natsHeaders()
      h.set(HEADERS.version, String(PROTOCOL_VERSION))
      for (const e of events) nc.publish(subjects.delivery(e.conv), eventBytes(e), { headers: h })
      await nc.flush()
    },
  }
}
