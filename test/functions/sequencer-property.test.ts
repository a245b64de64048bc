/**
 * A property test of the sequencer on real PostgreSQL: random sends, client retries, edits,
 * recalls and reactions, cut into random batches, some delivered twice (as after a crash
 * between commit and ack). Whatever happens: every conversation's seqs are 1..n without gaps,
 * each (sender, id) is stored once, and each message shows its last accepted edit or its recall.
 */
import { randomUUID } from "node:crypto"
import fc from "fast-check"
import { connect } from "nats"
import t from "tap"
import { handle } from "../../functions/persist/handler"
import { natsDeliveryBus } from "../../lib/adapters/nats"
import { natsRefusalNotices } from "../../lib/adapters/nats-refusals"
import { natsStoredEventLog } from "../../lib/adapters/nats-stored"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgHistoryStore } from "../../lib/adapters/pg-messages"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import type { EventBatch, InboundEvent } from "../../lib/protocol/events"
import { pipelinedPool, withNats, withPostgres, withSchema } from "../support/servers"

const USERS = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]

type Op =
  | { kind: "send"; conv: number; user: number }
  | { kind: "retry"; pick: number }
  | { kind: "edit"; pick: number; user: number }
  | { kind: "recall"; pick: number; user: number }
  | { kind: "react"; pick: number; user: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant("send" as const), conv: fc.nat(2), user: fc.nat(1) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("retry" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("edit" as const), pick: fc.nat(), user: fc.nat(1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("recall" as const), pick: fc.nat(), user: fc.nat(1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("react" as const), pick: fc.nat(), user: fc.nat(1) }),
  },
)

t.test("sequencer invariants under random sends, retries, edits, recalls and redeliveries", async (t) => {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const { pool, schema } = await withSchema(t, pgServer)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  for (const [i, id] of USERS.entries()) {
    await pool.query(
      "INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ($1, $2, $2, 'x', now())",
      [id, `u${i}`],
    )
  }
  const conversations = pgConversationStore(pool)
  const ports = {
    // As in the persist function: pipelined, two round trips per batch.
    sequencer: pgSequencerStore(pipelinedPool(t, pgServer, schema)),
    deliveries: natsDeliveryBus(nc),
    stored: natsStoredEventLog(nc),
    refusals: natsRefusalNotices(nc),
    now: () => new Date(),
  }
  const history = pgHistoryStore(pool)
  let run = 0

  await fc.assert(
    fc.asyncProperty(
      fc.array(op, { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1 }),
      fc.array(fc.boolean()),
      async (ops, cuts, replays) => {
        run++
        // Fresh conversations for each run; user 0 owns them, user 1 is a member.
        const convs = [0, 1, 2].map((c) => `p${run}c${c}`)
        for (const conv of convs)
          await conversations.createGroup(conv, conv, USERS[0] as string, [USERS[1] as string], new Date())

        const events: InboundEvent[] = []
        const sent: { conv: string; from: string; id: string }[] = []
        const ts = new Date().toISOString()
        for (const o of ops) {
          if (o.kind === "send") {
            const m = { conv: convs[o.conv] as string, from: USERS[o.user] as string, id: randomUUID() }
            sent.push(m)
            events.push({ v: 1, type: "message", ...m, body: { kind: "text", text: `t${sent.length}` }, ts })
            continue
          }
          const target = sent[o.pick % Math.max(1, sent.length)]
          if (target === undefined) continue
          if (o.kind === "retry") {
            events.push({ v: 1, type: "message", ...target, body: { kind: "text", text: "retry" }, ts })
            continue
          }
          const base = {
            v: 1 as const,
            conv: target.conv,
            from: USERS[o.user] as string,
            id: randomUUID(),
            ts,
            target: target.id,
          }
          if (o.kind === "edit")
            events.push({ ...base, type: "edit", body: { kind: "text", text: `edited ${base.id}` } })
          if (o.kind === "recall") events.push({ ...base, type: "recall" })
          if (o.kind === "react") events.push({ ...base, type: "reaction", emoji: "👍", op: "add" })
        }

        // Cut into batches; some batches are delivered twice (a crash after commit, before ack).
        let at = 0
        let seq = 0
        for (let i = 0; at < events.length; i++) {
          const size = cuts[i % cuts.length] as number
          const chunk = events.slice(at, at + size)
          at += size
          const batch: EventBatch = {
            function: "persist",
            stream: "COVE_IN",
            consumer: "persist-p0",
            messages: chunk.map((data) => ({
              subject: "cove.in.0",
              seq: ++seq,
              delivered: 1,
              headers: {},
              data,
            })),
          }
          await handle(batch, ports)
          if (replays[i % Math.max(1, replays.length)] === true) await handle(batch, ports)
        }

        for (const conv of convs) {
          const { items } = await history.history(
            conv,
            { direction: "forward", after: 0, limit: 1000 },
            USERS[0] as string,
          )
          // 1. contiguous seqs
          if (!items.every((e, n) => e.seq === n + 1)) return false
          // 2. each (sender, id) stored once
          const keys = items.map((e) => `${e.from}/${e.id}`)
          if (new Set(keys).size !== keys.length) return false
          // 3. every sent message is stored, exactly once
          const expected = new Set(sent.filter((m) => m.conv === conv).map((m) => m.id))
          const messages = items.filter((e) => e.type === "message")
          if (messages.length !== expected.size || !messages.every((m) => expected.has(m.id))) return false
          // 4. each message shows its last accepted edit (by its sender or the owner), or its recall
          for (const m of messages) {
            if (m.type !== "message") continue
            const later = items.filter((e) => (e.type === "edit" || e.type === "recall") && e.target === m.id)
            const recalled = later.some((e) => e.type === "recall")
            const lastEdit = later.filter((e) => e.type === "edit").at(-1)
            if (recalled) {
              if (m.body !== null || m.recalled !== true) return false
            } else if (lastEdit !== undefined && lastEdit.type === "edit") {
              if (JSON.stringify(m.body) !== JSON.stringify(lastEdit.body)) return false
            }
            // Only the sender or the owner (user 0) may edit or recall.
            if (!later.every((e) => e.from === m.from || e.from === USERS[0])) return false
          }
        }
        return true
      },
    ),
    { numRuns: 25 },
  )
  t.pass("invariants held for 25 random histories")
})
