/**
 * What the edge measures, in the Prometheus text format at GET /metrics. Only series that are
 * really measured; the publish-latency histogram arrives with the send path (issue 4).
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
  }
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>
