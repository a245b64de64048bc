import { mkdir } from "node:fs/promises"
import type { AddressInfo } from "node:net"
import S3rver from "s3rver"

/** s3rver accepts only this fixed key pair; it is a development store, never a production one. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const

export type LocalS3 = { readonly endpoint: string; readonly port: number; stop(): Promise<void> }

/**
 * Starts s3rver in this process. It does not enforce presigned length limits (see
 * ARCHITECTURE.md), so Cove checks every upload after the fact anyway.
 */
export async function startS3(options: { port: number; directory: string }): Promise<LocalS3> {
  await mkdir(options.directory, { recursive: true })
  const server = new S3rver({
    address: "127.0.0.1",
    port: options.port,
    directory: options.directory,
    silent: true,
  })
  const address = (await server.run()) as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    stop: () => server.close(),
  }
}
