/**
 * For search tests: real PostgreSQL and NATS, users with tokens, conversations, messages stored
 * by the real sequencer, the index function fed by the real connector from COVE_STORED, and the
 * search function over HTTP.
 */
import { randomUUID } from "node:crypto"
import { connect } from "nats"
import type { Test } from "tap"
import { register } from "../../functions/auth/handler"
import { registerInput } from "../../functions/auth/input"
import { handle as indexHandle } from "../../functions/index/handler"
import { handle as persist } from "../../functions/persist/handler"
import { routes } from "../../functions/search/routes"
import { startConnector } from "../../infra/connector/connector"
import { loadStack } from "../../infra/stack"
import { natsDeliveryBus } from "../../lib/adapters/nats"
import { natsRefusalNotices } from "../../lib/adapters/nats-refusals"
import { natsStoredEventLog } from "../../lib/adapters/nats-stored"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgFileNames, pgSearchIndex, pgSearchStore } from "../../lib/adapters/pg-search"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { defineFunction } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import { serveHandler } from "../../lib/function/server"
import { Registry } from "../../lib/metrics"
import { eventBatch, type InboundEvent } from "../../lib/protocol/events"
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../lib/protocol/tokens"
import { withAuth } from "./auth"
import { repoRoot } from "./bundles"
import { testLog, withNats, withPostgres } from "./servers"

export type User = { id: string; name: string; token: string }

export async function searchFixture(t: Test, options: { connector?: boolean; windowMin?: number } = {}) {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const auth = await withAuth(t, pgServer, nc)
  const pool = auth.pool
  const conversations = pgConversationStore(pool)

  // The index function as the runtime serves it, at /function/index, for the connector.
  const indexPorts = { index: pgSearchIndex(pool), files: pgFileNames(pool) }
  const indexServer = await serveHandler(
    defineFunction({
      name: "index",
      log: testLog,
      ports: async () => indexPorts,
      routes: [
        [
          "POST",
          "/function/index",
          async (req, p) => ({ body: await indexHandle(parseInput(eventBatch, req.body), p) }),
        ],
      ],
    }),
    { host: "127.0.0.1", port: 0, maxBodyBytes: 16_000_000, log: testLog },
  )
  t.teardown(() => indexServer.drain(100))
  if (options.connector !== false) {
    // Only the index function of stack.yml, with its real annotations (stream, partitions, batch).
    const stack = loadStack(`${repoRoot}/stack.yml`)
    const connector = await startConnector({
      nc,
      stack: { ...stack, functions: stack.functions.filter((f) => f.name === "index") },
      gatewayUrl: `http://127.0.0.1:${indexServer.port}`,
      registry: new Registry(),
      log: testLog,
    })
    t.teardown(() => connector.stop())
  }

  const searchServer = await serveHandler(
    defineFunction({
      name: "search",
      log: testLog,
      ports: async () => ({
        search: pgSearchStore(pool),
        conversations,
        auth: pgAuthenticator(pool, { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE }, auth.clock.now),
        maxQueryChars: 256,
        windowMin: options.windowMin ?? 1_000,
        now: () => new Date(),
      }),
      routes,
    }),
    { host: "127.0.0.1", port: 0, maxBodyBytes: 16_000, log: testLog },
  )
  t.teardown(() => searchServer.drain(100))

  const persistPorts = {
    sequencer: pgSequencerStore(pool),
    deliveries: natsDeliveryBus(nc),
    stored: natsStoredEventLog(nc),
    refusals: natsRefusalNotices(nc),
    now: () => new Date(),
  }
  let streamSeq = 0
  /** Stores events with the real sequencer, which publishes them to COVE_STORED. */
  const store = async (events: InboundEvent[]) => {
    const result = await persist(
      {
        function: "persist",
        stream: "COVE_IN",
        consumer: "test",
        messages: events.map((data) => ({
          subject: "cove.in.0",
          seq: ++streamSeq,
          delivered: 1,
          headers: {},
          data,
        })),
      },
      persistPorts,
    )
    if (result.rejected.length > 0) throw new Error(`refused: ${JSON.stringify(result.rejected)}`)
  }
  const ts = () => new Date().toISOString()
  const message = (conv: string, from: User, text: string): InboundEvent & { id: string } => ({
    v: 1,
    type: "message",
    id: randomUUID(),
    conv,
    from: from.id,
    body: { kind: "text", text },
    ts: ts(),
  })
  const edit = (conv: string, from: User, target: string, text: string): InboundEvent => ({
    v: 1,
    type: "edit",
    id: randomUUID(),
    conv,
    from: from.id,
    target,
    body: { kind: "text", text },
    ts: ts(),
  })
  const recall = (conv: string, from: User, target: string): InboundEvent => ({
    v: 1,
    type: "recall",
    id: randomUUID(),
    conv,
    from: from.id,
    target,
    ts: ts(),
  })

  const user = async (name: string): Promise<User> => {
    const r = await register(
      registerInput.parse({ username: name, password: "correct horse battery" }),
      undefined,
      auth.ports,
    )
    return { id: r.user.id, name, token: r.access_token }
  }
  const group = async (id: string, owner: User, members: User[]) => {
    await conversations.createGroup(
      id,
      id,
      owner.id,
      members.map((m) => m.id),
      new Date(),
    )
  }

  const base = `http://127.0.0.1:${searchServer.port}`
  /** GET /function/search as `who`, with these query parameters. */
  const search = (who: User, params: Record<string, string>) =>
    fetch(`${base}/?${new URLSearchParams(params)}`, { headers: { authorization: `Bearer ${who.token}` } })

  return { pool, nc, user, group, store, message, edit, recall, search, indexPorts, indexServer }
}
