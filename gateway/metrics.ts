/**
 * What the edge measures, in the Prometheus text format at GET /metrics. Only series that are
 * really measured.
 */
import { Registry } from "../lib/metrics"

export function createEdgeMetrics() {
  const registry = new Registry()
  return {
    registry,
    connections: registry.gauge("cove_edge_connections", "Open WebSocket connections."),
    upgrades: registry.counter("cove_edge_upgrades_total", "WebSocket upgrades accepted."),
    rejections: registry.counter(
      "cove_edge_upgrade_rejections_total",
      "Upgrade requests refused before the socket opened, by error code.",
    ),
    upgradeSeconds: registry.histogram(
      "cove_edge_upgrade_check_seconds",
      "Time from an upgrade request to the verdict (origin, token, revocations).",
    ),
    framesIn: registry.counter("cove_edge_frames_in_total", "Frames received from clients."),
    framesOut: registry.counter("cove_edge_frames_out_total", "Frames sent to clients."),
    errorFrames: registry.counter("cove_edge_error_frames_total", "Error frames sent, by error code."),
    closes: registry.counter("cove_edge_closes_total", "Connections closed, by WebSocket close code."),
    publishSeconds: registry.histogram(
      "cove_edge_publish_seconds",
      "Time from a client's send (or edit, recall, react, read) to JetStream's PubAck, by frame type.",
    ),
    deliveries: registry.counter(
      "cove_edge_deliveries_total",
      "Conversation events received from NATS and published to the conversation's sockets.",
    ),
    conversations: registry.gauge(
      "cove_edge_conversations",
      "Conversations this edge receives deliveries for.",
    ),
    catchUps: registry.counter(
      "cove_edge_control_catch_ups_total",
      "NATS reconnects after which deliveries were held until the control events of the cut were read, by outcome (released, resync).",
    ),
  }
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>
