/**
 * The control outbox (migration 0011): events the edges must not miss are inserted in the
 * transaction of the change they tell of, then published and deleted. A crash or a NATS outage
 * between the commit and the publish delays them instead of losing them.
 *
 * Order: the events of one key (a conversation) are published oldest first, under a session
 * advisory lock on the key held from the first read to the last delete, so two changes of one
 * conversation reach the edges in the order they were committed, whoever publishes them.
 * Whatever a flush could not publish is published by the relay, which every instance of a
 * function that queues such events runs on a timer while it is warm.
 */
import type pg from "pg"
import type { Logger } from "../log"
import type { ControlEvent, ControlOutbox } from "../ports"
import type { ControlPublisher } from "./nats-control"

/** Queues an event under `key`; call it inside the transaction that makes the change. */
export async function queueControlEvent(client: pg.ClientBase, key: string, e: ControlEvent): Promise<void> {
  await client.query("INSERT INTO control_outbox (order_key, kind, event) VALUES ($1, $2, $3)", [
    key,
    e.kind,
    JSON.stringify(e.event),
  ])
}

/** The advisory lock's first key: the outbox's own space, so its locks meet no one else's. */
const LOCK_SPACE = 0x636f7665 // "cove"

export type ControlOutboxRelay = ControlOutbox & {
  /** Publishes what flushes left behind for longer than `minAgeMs`; answers how many keys it emptied. */
  relay(): Promise<number>
  /** Runs relay() every `intervalMs` until stop(); never keeps the process alive on its own. */
  start(intervalMs: number): void
  stop(): void
}

export function pgControlOutbox(
  pool: pg.Pool,
  publish: ControlPublisher,
  log: Logger,
  options: {
    /** The kinds the relay publishes: a process's NATS user may publish only its own kinds. */
    kinds?: readonly ControlEvent["kind"][]
    minAgeMs?: number
    lockWaitMs?: number
  } = {},
): ControlOutboxRelay {
  const kinds = options.kinds ?? ["membership", "revoked"]
  const minAgeMs = options.minAgeMs ?? 2_000
  const lockWaitMs = options.lockWaitMs ?? 10_000
  let timer: NodeJS.Timeout | undefined
  let relaying = false

  /** Publishes `key`'s queue under its lock; `waitMs` 0 gives up at once when someone holds it. */
  async function flushKey(key: string, waitMs: number): Promise<"done" | "busy" | "failed"> {
    const client = await pool.connect()
    let broken: Error | undefined
    try {
      if (!(await lock(client, key, waitMs))) return "busy"
      try {
        for (;;) {
          const { rows } = await client.query<{ id: string; kind: string; event: unknown }>(
            "SELECT id, kind, event FROM control_outbox WHERE order_key = $1 ORDER BY id LIMIT 100",
            [key],
          )
          if (rows.length === 0) return "done"
          for (const row of rows) {
            // Written by queueControlEvent only (the table's CHECK holds the kinds).
            await publish(row.id, { kind: row.kind, event: row.event } as ControlEvent)
            await client.query("DELETE FROM control_outbox WHERE id = $1", [row.id])
          }
        }
      } finally {
        await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_SPACE, key]).catch((err) => {
          // A connection that cannot unlock is closed, which unlocks.
          broken = err as Error
        })
      }
    } catch (err) {
      log.warn({ err, key }, "control events not published yet; the relay will retry")
      // The failure may be the connection's own: it is not handed out again.
      broken = err as Error
      return "failed"
    } finally {
      client.release(broken)
    }
  }

  async function lock(client: pg.PoolClient, key: string, waitMs: number): Promise<boolean> {
    const deadline = Date.now() + waitMs
    for (;;) {
      const { rows } = await client.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok",
        [LOCK_SPACE, key],
      )
      if (rows[0]?.ok === true) return true
      if (Date.now() >= deadline) return false
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  const outbox: ControlOutboxRelay = {
    async flush(key) {
      const outcome = await flushKey(key, lockWaitMs)
      if (outcome === "busy")
        log.warn({ key }, "control events of this key are being published elsewhere for too long")
      return outcome === "done"
    },
    async relay() {
      // The keys waiting longest first.
      const { rows } = await pool.query<{ order_key: string }>(
        `SELECT order_key FROM control_outbox
          WHERE created_at < now() - make_interval(secs => $1::float8 / 1000) AND kind = ANY($2::text[])
          GROUP BY order_key ORDER BY min(id) LIMIT 100`,
        [minAgeMs, kinds],
      )
      let emptied = 0
      // A key someone else is flushing is theirs; it is looked at again next time.
      for (const { order_key } of rows) if ((await flushKey(order_key, 0)) === "done") emptied++
      if (rows.length > 0) log.info({ keys: rows.length, emptied }, "control outbox relayed")
      return emptied
    },
    start(intervalMs) {
      timer ??= setInterval(() => {
        if (relaying) return
        relaying = true
        outbox
          .relay()
          .catch((err: unknown) => log.warn({ err }, "control outbox relay failed"))
          .finally(() => {
            relaying = false
          })
      }, intervalMs)
      timer.unref()
    },
    stop() {
      clearInterval(timer)
      timer = undefined
    },
  }
  return outbox
}
