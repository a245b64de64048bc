/**
 * The edge's routes and transport limits: GET /v1/ws (upgrade), /healthz and /metrics. Every
 * decision is delegated: the door admits, the connections run the sessions.
 */
import { AppError, toErrorBody } from "../lib/errors"
import type { Logger } from "../lib/log"
import { PROMETHEUS_CONTENT_TYPE } from "../lib/metrics"
import { Conn, type Connections } from "./connections"
import type { Admission } from "./door"
import type { EdgeMetrics } from "./metrics"
import { closeCodeOf } from "./session"
import {
  createUwsTransport,
  type HttpReply,
  type Transport,
  type UpgradeRequest,
  type UwsModule,
} from "./socket"

export type EdgeServerOptions = {
  readonly uws: UwsModule
  readonly admit: (req: UpgradeRequest) => Promise<Admission>
  readonly connections: Connections
  readonly metrics: EdgeMetrics
  readonly log: Logger
  readonly maxFrameBytes: number
  readonly idleTimeoutMs: number
  readonly maxBackpressureBytes: number
  /** True while the edge serves and its NATS connection is up. */
  readonly healthy: () => boolean
  /** True once draining: upgrades on kept-alive HTTP connections are refused too. */
  readonly draining: () => boolean
  readonly newSessionId: () => string
}

const JSON_TYPE = "application/json"

function errorReply(err: AppError): HttpReply {
  const { status, body } = toErrorBody(err)
  return { status, contentType: JSON_TYPE, body: JSON.stringify(body) }
}

export function createEdgeServer(o: EdgeServerOptions): Transport {
  const { connections, metrics, log } = o
  return createUwsTransport<Conn>(
    o.uws,
    {
      // Frames up to twice the limit reach the edge, which closes with 1009 FRAME_TOO_LARGE;
      // beyond that uWS drops the connection without reading more.
      hardMaxPayloadBytes: o.maxFrameBytes * 2,
      // uWS counts idle time in seconds (4 s steps) and pings on its own before the timeout.
      idleTimeoutS: Math.round(o.idleTimeoutMs / 1000),
      // The edge closes readers past maxBackpressureBytes (4010); uWS would silently drop sends.
      hardMaxBackpressureBytes: o.maxBackpressureBytes * 2,
      droppedClose: { code: closeCodeOf("SLOW_CONSUMER"), reason: "SLOW_CONSUMER" },
    },
    {
      upgrade: async (req) => {
        const started = performance.now()
        const shuttingDown: Admission = { ok: false, error: new AppError("SHUTTING_DOWN") }
        let admission = o.draining() ? shuttingDown : await o.admit(req)
        // Draining may have begun while the token was checked; its sockets are already closed.
        if (admission.ok && o.draining()) admission = shuttingDown
        metrics.upgradeSeconds.observe((performance.now() - started) / 1000)
        if (!admission.ok) {
          metrics.rejections.inc({ reason: admission.error.code })
          const fields = { code: admission.error.code, remote: req.remoteAddress }
          // A 503 means the edge is degraded (keys unreachable) or stopping; a 4xx is the client's.
          if (admission.error.spec.status >= 500) log.warn(fields, "upgrade refused")
          else log.info(fields, "upgrade refused")
          return { accept: false, reply: errorReply(admission.error) }
        }
        metrics.upgrades.inc()
        return { accept: true, data: new Conn(admission.identity, o.newSessionId(), admission.token) }
      },
      open: (socket) => connections.opened(socket),
      message: (socket, text, bytes) => connections.received(socket, text, bytes),
      close: (socket, code) => connections.closed(socket, code),
      routes: {
        "/healthz": () => {
          const healthy = o.healthy()
          return {
            status: healthy ? 200 : 503,
            contentType: JSON_TYPE,
            body: JSON.stringify({ status: healthy ? "ok" : "unavailable", connections: connections.size }),
          }
        },
        "/metrics": () => ({
          status: 200,
          contentType: PROMETHEUS_CONTENT_TYPE,
          body: metrics.registry.render(),
        }),
      },
      notUpgrade: () => errorReply(new AppError("UPGRADE_REQUIRED")),
      notFound: () => errorReply(new AppError("NOT_FOUND")),
      fault: (err) => {
        log.error({ err }, "upgrade handler failed")
        return errorReply(new AppError("INTERNAL"))
      },
    },
  )
}
