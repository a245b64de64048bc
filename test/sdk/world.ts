/**
 * The local stack for SDK tests, plus a second edge in this process that a test can stop and
 * start again on the same port. Clients are real CoveClients over `ws`, closed in teardown.
 */
import type { Test } from "tap"
import WebSocket from "ws"
import { type Edge, startEdge } from "../../gateway/edge"
import { loadConfig } from "../../lib/config"
import { gatewayFields } from "../../lib/settings"
import {
  type ClientOptions,
  CoveClient,
  type StoredEvent,
  type WebSocketConstructor,
} from "../../sdk/src/index"
import { eventually, testLog } from "../support/servers"
import { withStack } from "../support/stack"

export const PASSWORD = "correct horse battery"

/** Every socket a client opened, so a test can cut one as a network failure would. */
export class Sockets {
  readonly opened: WebSocket[] = []
  readonly sent: Array<Record<string, unknown>> = []
  /** Pass as the client's `WebSocket`: the real `ws` socket, recorded. */
  readonly ctor = (() => {
    const sockets = this
    return class extends WebSocket {
      constructor(url: string, options?: WebSocket.ClientOptions) {
        super(url, options)
        sockets.opened.push(this)
        const send = this.send.bind(this)
        // Observes what the client writes (the socket itself is the real one).
        this.send = ((data: string) => {
          sockets.sent.push(JSON.parse(data) as Record<string, unknown>)
          send(data)
        }) as typeof this.send
      }
    }
  })()
  /** Ends the current socket at once, without a close frame, as a dropped network does. */
  cut(): void {
    this.opened.at(-1)?.terminate()
  }
}

export async function world(t: Test) {
  const stack = await withStack(t, { edgeEnv: { COVE_EDGE_PRESENCE_GRACE_MS: "300" } })
  const edgeConfig = (port: number) =>
    loadConfig(gatewayFields, {
      env: {
        COVE_EDGE_PORT: String(port),
        NATS_URL: stack.natsUrl,
        COVE_FUNCTIONS_URL: stack.gatewayUrl,
        COVE_JWKS_URL: `${stack.gatewayUrl}/function/auth/jwks`,
        COVE_EDGE_PRESENCE_GRACE_MS: "300",
      },
      secretsDir: "/nonexistent",
    })
  let edgeB: Edge | undefined = await startEdge(edgeConfig(0), testLog)
  const portB = edgeB.port
  t.teardown(() => edgeB?.drain(1_000))
  const edges = { a: stack.edgeUrl, b: `ws://127.0.0.1:${portB}/v1/ws` }

  const options = (edgeUrl: string, extra: Partial<ClientOptions> = {}) => ({
    baseUrl: stack.gatewayUrl,
    edgeUrl,
    WebSocket: WebSocket as WebSocketConstructor,
    // Short delays: the tests wait for outcomes, never for time.
    reconnect: { baseMs: 50, maxMs: 500, shutdownMaxMs: 200 },
    ...extra,
  })
  const admin = await CoveClient.register({ ...options(edges.a), username: "admin", password: PASSWORD })
  const track = (c: CoveClient) => {
    t.teardown(() => c.close())
    return c
  }
  return {
    stack,
    edges,
    options,
    admin: track(admin),
    /** A new user's client (not connected). */
    user: async (name: string, edgeUrl = edges.a, extra: Partial<ClientOptions> = {}) =>
      track(
        await CoveClient.register({
          ...options(edgeUrl, extra),
          username: name,
          password: PASSWORD,
          adminToken: admin.tokens.access_token,
        }),
      ),
    client: (o: ClientOptions) => track(new CoveClient(o)),
    stopEdgeB: async () => {
      await edgeB?.drain(1_000)
      edgeB = undefined
    },
    startEdgeB: async () => {
      edgeB = await startEdge(edgeConfig(portB), testLog)
    },
  }
}

/** Every seq event a client emits, in emission order. */
export function recorder(c: CoveClient): StoredEvent[] {
  const seen: StoredEvent[] = []
  for (const name of ["message", "edit", "recall", "reaction"] as const) c.on(name, (e) => seen.push(e))
  return seen
}

export const until = <T>(what: string, check: () => T | undefined | false, deadlineMs = 20_000) =>
  eventually(async () => check() || undefined, what, deadlineMs)

export const text = (s: string) => ({ kind: "text" as const, text: s })
