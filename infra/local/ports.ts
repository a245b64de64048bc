import { createServer } from "node:net"

/** Asks the kernel for a free TCP port on `host`. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, host, resolve)
  })
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === "string") throw new Error("could not read a free port")
  return address.port
}

export class PortInUseError extends Error {
  constructor(
    readonly what: string,
    readonly port: number,
    readonly variable: string,
  ) {
    super(`${what}: port ${port} is already in use; set ${variable} to another port (0 picks a free one)`)
    this.name = "PortInUseError"
  }
}

/**
 * Resolves a configured port: 0 means "any free port"; any other value is checked to be free
 * now, so that a clash is reported before anything is started.
 */
export async function claimPort(
  what: string,
  port: number,
  variable: string,
  host = "127.0.0.1",
): Promise<number> {
  if (port === 0) return freePort(host)
  const server = createServer()
  const free = await new Promise<boolean>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve(false)
      else reject(err)
    })
    server.listen(port, host, () => resolve(true))
  })
  if (free) await new Promise<void>((resolve) => server.close(() => resolve()))
  if (!free) throw new PortInUseError(what, port, variable)
  return port
}
