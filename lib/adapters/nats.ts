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
import { FRAME_SEPARATOR } from "../protocol/delivery"
import { HEADERS, PROTOCOL_VERSION, subjects } from "../protocol/subjects"
import { eventBytes } from "./nats-event-bytes"
import { groupBySubject, joinParts, payloadBudget } from "./nats-payload-groups"

/** How a process connects to NATS, as its settings give it (lib/settings.ts, natsClientFields). */
export type NatsClientSettings = {
  readonly natsUser?: string | undefined
  readonly natsPassword?: string | undefined
  readonly natsToken?: string | undefined
  readonly natsCreds?: string | undefined
  readonly natsTlsCa?: string | undefined
  readonly natsTlsCert?: string | undefined
  readonly natsTlsKey?: string | undefined
}

const encoder = new TextEncoder()

/**
 * The connection options for `c` and the server URL(s) `url`; a ConfigError names what does not
 * fit together. TLS is required (nats.js refuses a server that does not offer it) with a `tls://`
 * URL or any of the TLS settings, so that a deployment asking for it never falls back to plain.
 */
export function natsClientOptions(url: string, c: NatsClientSettings): Partial<ConnectionOptions> {
  const problems: string[] = []
  if ((c.natsTlsCert === undefined) !== (c.natsTlsKey === undefined))
    problems.push("NATS_TLS_CERT and NATS_TLS_KEY (secrets nats-tls-cert, nats-tls-key) go together")
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
  const wantsTls =
    url.split(",").some((u) => u.trim().startsWith("tls://")) ||
    [c.natsTlsCa, c.natsTlsCert, c.natsTlsKey].some((v) => v !== undefined)
  const tls = wantsTls
    ? {
        tls: {
          ...(c.natsTlsCa === undefined ? {} : { ca: c.natsTlsCa }),
          ...(c.natsTlsCert === undefined ? {} : { cert: c.natsTlsCert }),
          ...(c.natsTlsKey === undefined ? {} : { key: c.natsTlsKey }),
        },
      }
    : {}
  return { ...tls, ...authOptions(c) }
}

function authOptions(c: NatsClientSettings): Partial<ConnectionOptions> {
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
  settings: NatsClientSettings = {},
): Promise<NatsConnection> {
  const nc = await connect({
    servers: url.split(","),
    name,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: false,
    inboxPrefix: inboxPrefixOf(name),
    ...natsClientOptions(url, settings),
  })
  void (async () => {
    for await (const s of nc.status()) log.info({ nats: s.type, data: String(s.data) }, "nats status")
  })()
  return nc
}

/**
 * Each conversation's events of a batch go out as one NATS message (lib/protocol/delivery.ts),
 * which the edges split into frames: the server and every edge handle one message per
 * conversation and batch instead of one per event.
 */
export function natsDeliveryBus(nc: NatsConnection): DeliveryBus {
  return {
    async deliver(events) {
      const h = natsHeaders()
      h.set(HEADERS.version, String(PROTOCOL_VERSION))
      const groups = groupBySubject(events, (e) => subjects.delivery(e.conv), eventBytes, payloadBudget(nc))
      for (const g of groups) nc.publish(g.subject, joinParts(g.parts, FRAME_SEPARATOR), { headers: h })
      await nc.flush()
    },
  }
}
