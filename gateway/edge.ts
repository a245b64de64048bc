/**
 * Wires one edge from its config: native uWS, NATS, the token verifier, the door, the open
 * connections and the control events (revocations, membership changes). main.ts runs it as a
 * process; tests start it in-process on a free port.
 */
import { randomUUID } from "node:crypto"
import { connectNats } from "../lib/adapters/nats"
import { natsInboundLog } from "../lib/adapters/nats-inbound"
import type { ConfigOf } from "../lib/config"
import type { Logger } from "../lib/log"
import { decodeJson } from "../lib/protocol/decode"
import { parseMembershipEvent } from "../lib/protocol/events"
import type { ConnectionLimits } from "../lib/protocol/frames"
import { subjects } from "../lib/protocol/subjects"
import { userRevokedEvent } from "../lib/protocol/tokens"
import type { gatewayFields } from "../lib/settings"
import { createVerifier } from "./auth"
import { Connections } from "./connections"
import { type ControlEvents, followControlEvents } from "./control-events"
import { createDoor } from "./door"
import { Fanout } from "./fanout"
import { httpMembershipLoader, type LoadMemberships, Memberships } from "./memberships"
import { Messaging } from "./messaging"
import { createEdgeMetrics, type EdgeMetrics } from "./metrics"
import { Presence } from "./presence"
import { forwardRefusals } from "./refusals"
import { Revocations } from "./revocations"
import { createEdgeServer } from "./server"
import { assertNativeUws, loadNativeUws } from "./socket"

/**
 * How long deliveries may be held after a NATS reconnect while the control events of the cut are
 * read; past it, sockets are closed to load their memberships again (RESYNC_REQUIRED).
 */
const CONTROL_CATCH_UP_MS = 10_000

export type EdgeConfig = ConfigOf<typeof gatewayFields>

export type EdgeOptions = {
  /** The uWS module to run on (default: the installed one); it must be the native build. */
  readonly uws?: unknown
  readonly now?: () => number
  readonly newSessionId?: () => string
  /** Where a connecting user's conversations come from (default: the conversations function). */
  readonly loadMemberships?: LoadMemberships
}

export type Edge = {
  readonly port: number
  readonly metrics: EdgeMetrics
  openConnections(): number
  /**
   * Stops accepting, closes every socket with 1012 (SHUTTING_DOWN) so clients reconnect to
   * another edge, and resolves once all are gone or at the deadline, with NATS drained.
   */
  drain(deadlineMs?: number): Promise<void>
}

const encoder = new TextEncoder()

export function defaultOrigins(webPort: number): string[] {
  return [`http://127.0.0.1:${webPort}`, `http://localhost:${webPort}`]
}

export async function startEdge(config: EdgeConfig, log: Logger, options: EdgeOptions = {}): Promise<Edge> {
  const uws = options.uws === undefined ? loadNativeUws() : options.uws
  assertNativeUws(uws)
  const now = options.now ?? Date.now
  const metrics = createEdgeMetrics()
  const limits: ConnectionLimits = {
    max_frame_bytes: config.maxFrameBytes,
    first_frame_timeout_ms: config.firstFrameTimeoutMs,
    idle_timeout_ms: config.idleTimeoutMs,
    rate_per_sec: config.ratePerSec,
    rate_burst: config.rateBurst,
    user_rate_per_sec: config.userRatePerSec,
    user_rate_burst: config.userRateBurst,
    max_sockets_per_user: config.maxSocketsPerUser,
  }
  const nc = await connectNats(config.natsUrl, "cove-edge", log, config)
  const fanout = new Fanout(
    nc,
    (topic, data) => transport.publish(topic, data),
    () => metrics.deliveries.inc(),
    log,
  )
  const presence = await Presence.start({
    nc,
    edgeId: randomUUID(),
    graceMs: config.presenceGraceMs,
    heartbeatMs: config.presenceHeartbeatMs,
    announce: (conv, frame) => nc.publish(subjects.delivery(conv), encoder.encode(JSON.stringify(frame))),
    log,
  })
  const messaging = new Messaging({
    presence,
    presenceMaxMembers: config.presenceMaxMembers,
    memberships: new Memberships(
      options.loadMemberships ?? httpMembershipLoader(config.functionsUrl, config.functionsTimeoutMs),
    ),
    fanout,
    inbound: natsInboundLog(nc),
    relay: (conv, frame) => nc.publish(subjects.delivery(conv), encoder.encode(JSON.stringify(frame))),
    metrics,
    now: () => new Date(now()),
    log,
  })
  const connections = new Connections({
    limits,
    policy: {
      frames: { ratePerSec: config.ratePerSec, burst: config.rateBurst },
      strikes: { ratePerSec: 1, burst: config.rateStrikes },
    },
    userRate: { ratePerSec: config.userRatePerSec, burst: config.userRateBurst },
    maxBackpressureBytes: config.maxBackpressureBytes,
    now,
    metrics,
    messaging,
    log,
  })
  const revocations = new Revocations(config.revocationMemoryMs)

  let natsUp = true
  // Deliveries are held from a NATS disconnect until the control events stored meanwhile have
  // been read (a member removed during the cut must not get the conversation's next messages);
  // the latest reconnect decides.
  let reconnects = 0
  let control: ControlEvents | undefined
  // Membership changes being applied to sockets (applying one may wait for the user's list).
  const applying = new Set<Promise<void>>()
  const releaseWhenCaughtUp = async (reconnect: number) => {
    const caughtUp = control === undefined ? true : await control.caughtUp(CONTROL_CATCH_UP_MS)
    // A change already read may still be in progress: a member removed during the cut leaves
    // the conversation's topic only once it has been applied to their sockets.
    await Promise.all([...applying])
    if (reconnect !== reconnects || !natsUp || !fanout.holding) return
    const released = fanout.release(caughtUp)
    metrics.catchUps.inc({ outcome: released ? "released" : "resync" })
    if (released) return
    // Memberships may be wrong, or deliveries were dropped: every socket loads its conversations
    // again and fills its gaps from history.
    const open = connections.size
    connections.terminateAll("RESYNC_REQUIRED")
    log.warn(
      { closed: open, caughtUp },
      "deliveries held after a NATS reconnect were dropped; sockets closed to resync",
    )
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        natsUp = false
        fanout.hold()
      } else if (s.type === "reconnect") {
        natsUp = true
        void releaseWhenCaughtUp(++reconnects)
      }
    }
  })()
  control = await followControlEvents({
    nc,
    maxAgeMs: config.controlMaxAgeMs,
    // As long as a revoked token can live: after a restart the edge refuses what it revoked.
    replayRevokedMs: config.revocationMemoryMs,
    log,
    handlers: {
      revoked: (subject, data, publishedAt) => {
        const decoded = decodeJson(userRevokedEvent, data)
        if (!decoded.ok) {
          // Nothing to act on; the publisher is broken, so say so loudly.
          log.warn({ ...decoded.detail, subject }, `revocation event ${decoded.problem}; ignored`)
          return
        }
        const event = decoded.data
        const reason = event.reason === "disabled" ? "AUTH_USER_DISABLED" : "AUTH_SESSION_REVOKED"
        revocations.record(event.user, event.sid, reason, publishedAt ?? now())
        const closed = connections.terminateUser(event.user, event.sid, reason)
        log.info({ user: event.user, sid: event.sid, reason: event.reason, closed }, "revocation applied")
      },
      lost: () => {
        // Memberships are loaded when a socket connects: reconnecting every socket (1012, after a
        // random delay on the client's side) is the one way to make them right again.
        const open = connections.size
        connections.terminateAll("RESYNC_REQUIRED")
        log.warn({ closed: open }, "control events lost; every socket closed to load its memberships again")
      },
      membership: (subject, data) => {
        const event = parseMembershipEvent(data)
        if (event === undefined) {
          log.warn({ subject }, "membership event is invalid; ignored")
          return
        }
        // The subject names the user this copy is for; the event lists everyone affected.
        const user = subject.split(".")[2] ?? ""
        const joined = event.added.includes(user)
        if (!joined && !event.removed.includes(user)) return
        const applied = messaging
          .membershipChanged(user, event, joined, connections.socketsOf(user))
          .catch((cause: unknown) =>
            log.warn({ err: cause, user, conv: event.conv }, "membership change not applied"),
          )
        applying.add(applied)
        void applied.finally(() => applying.delete(applied))
      },
    },
  })
  forwardRefusals(nc, (user) => connections.socketsOf(user), log)
  // The server has the refusal subscription once this resolves (the control consumer already
  // exists): no event published later is missed.
  await nc.flush()

  let draining = false
  let listening = false
  const transport = createEdgeServer({
    uws,
    admit: createDoor({
      allowedOrigins: new Set(config.allowedOrigins ?? defaultOrigins(config.webPort)),
      verify: createVerifier({
        jwksUrl: config.jwksUrl,
        issuer: config.jwtIssuer,
        audience: config.jwtAudience,
        cooldownMs: config.jwksCooldownMs,
        maxAgeMs: config.jwksMaxAgeMs,
        timeoutMs: config.jwksTimeoutMs,
      }),
      revocations,
      now,
    }),
    connections,
    metrics,
    log,
    maxFrameBytes: config.maxFrameBytes,
    idleTimeoutMs: config.idleTimeoutMs,
    maxBackpressureBytes: config.maxBackpressureBytes,
    healthy: () => listening && natsUp && !nc.isClosed(),
    draining: () => draining,
    newSessionId: options.newSessionId ?? randomUUID,
  })
  let port: number
  try {
    port = await transport.listen(config.host, config.port)
  } catch (err) {
    await control.stop()
    await nc.close()
    throw err
  }
  listening = true

  return {
    port,
    metrics,
    openConnections: () => connections.size,
    drain: async (deadlineMs = config.drainMs) => {
      if (draining) return
      draining = true
      listening = false
      transport.stopListening()
      await presence.stop()
      connections.terminateAll("SHUTTING_DOWN")
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<"deadline">((resolve) => {
        timer = setTimeout(() => resolve("deadline"), deadlineMs)
      })
      await Promise.race([connections.whenEmpty(), deadline])
      if (connections.size > 0)
        log.warn({ left: connections.size }, "drain deadline passed; closing the rest")
      transport.close()
      // Before the drain, which would end the consumer as if it had failed.
      await control.stop()
      // NATS may be down (it reconnects forever): the deadline bounds the drain as a whole.
      const drained = nc.drain().then(
        () => "drained" as const,
        (err: unknown) => {
          // Already closed, or the connection failed while draining: closing below is all that is left.
          log.warn({ err }, "NATS drain failed")
          return "failed" as const
        },
      )
      const outcome = await Promise.race([drained, deadline])
      clearTimeout(timer)
      if (outcome !== "drained") {
        log.warn({ outcome }, "NATS not drained; closing the connection")
        if (!nc.isClosed()) await nc.close()
      }
    },
  }
}
