/**
 * A TCP proxy on a free loopback port in front of one server (NATS, in the tests): `cut` drops
 * every connection through it and refuses new ones until `resume`, so a client loses its
 * connection while the server itself stays up, as in a network blip or a failover.
 */
import { type AddressInfo, createConnection, createServer, type Socket } from "node:net"
import type { Test } from "tap"

export type TcpProxy = {
  /** `nats://127.0.0.1:<port>` of the proxy. */
  readonly url: string
  cut(): void
  resume(): void
}

export async function withTcpProxy(t: Test, targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>()
  let refusing = false
  const server = createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort })
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a)
      a.pipe(b)
      // Either side ending or failing ends both: the proxy never holds half a connection.
      a.on("close", () => {
        open.delete(a)
        b.destroy()
      })
      a.on("error", () => b.destroy())
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const cutAll = () => {
    for (const s of open) s.destroy()
  }
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        cutAll()
        server.close(() => resolve())
      }),
  )
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      refusing = true
      cutAll()
    },
    resume() {
      refusing = false
    },
  }
}
