/** A WebSocket client for end-to-end tests that keeps every frame it received. */
import type { Test } from "tap"
import WebSocket from "ws"
import { type Json, jsonOf } from "./http"
import { eventually } from "./servers"

export type Frame = Record<string, unknown> & { type: string }

export class Device {
  readonly frames: Frame[] = []
  /** How the socket closed, once it has. */
  closed: { code: number; reason: string } | undefined
  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => this.frames.push(JSON.parse(String(data)) as Frame))
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: String(reason) }
    })
  }
  send(frame: object): void {
    this.ws.send(JSON.stringify(frame))
  }
  of(type: string, conv?: string): Frame[] {
    return this.frames.filter((f) => f.type === type && (conv === undefined || f.conv === conv))
  }
  async waitFor(what: string, check: (d: Device) => boolean, deadlineMs = 10_000): Promise<void> {
    await eventually(async () => (check(this) ? true : undefined), what, deadlineMs)
  }
}

/**
 * What end-to-end tests do as clients of a stack: call its functions, register users (by an
 * admin registered first) and connect their devices to an edge. Sockets close in `t`'s teardown.
 */
export async function stackClients(t: Test, gatewayUrl: string) {
  const call = async (method: string, path: string, body?: unknown, token?: string): Promise<Json> => {
    const res = await fetch(`${gatewayUrl}/function/${path}`, {
      method,
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return jsonOf(res)
  }
  const admin = await call("POST", "auth/register", { username: "admin", password: PASSWORD })
  const user = async (name: string) => {
    const r = await call("POST", "auth/register", { username: name, password: PASSWORD }, admin.access_token)
    return { id: r.user.id as string, token: r.access_token as string }
  }
  const attempt = async (edgeUrl: string, token: string): Promise<Device> => {
    const ws = new WebSocket(edgeUrl, { headers: { authorization: `Bearer ${token}` } })
    const device = new Device(ws)
    await new Promise((resolve, reject) => {
      ws.once("open", resolve)
      ws.once("error", reject)
    })
    t.teardown(() => ws.terminate())
    await device.waitFor("hello", (d) => d.of("hello").length === 1 || d.closed !== undefined)
    return device
  }
  /**
   * A device with its hello. The edge's uWS build (20.30) now and then drops a socket it has just
   * upgraded, before anything is sent (1006 on both sides; docs/benchmarks.md): the device then
   * connects again, as clients do, and the test says so. Any other early close fails.
   */
  const connect = async (edgeUrl: string, who: { token: string }): Promise<Device> => {
    for (let tries = 1; ; tries++) {
      const device = await attempt(edgeUrl, who.token)
      if (device.of("hello").length === 1) return device
      const how = `${device.closed?.code} ${device.closed?.reason}`
      if (device.closed?.code !== 1006 || tries === 3)
        throw new Error(`the socket closed before its hello: ${how}`)
      t.comment(`a new socket was dropped before its hello (${how}); connecting again`)
    }
  }
  return { call, admin, user, connect }
}

const PASSWORD = "correct horse battery"

/** Sends `text` from one device into `conv`, waits until another has it, and answers its id. */
export async function sendSeen(from: Device, to: Device, conv: string, text: string): Promise<string> {
  const id = crypto.randomUUID()
  from.send({ type: "send", id, conv, body: { kind: "text", text } })
  await to.waitFor(`"${text}" delivered`, (d) => d.of("message", conv).some((m) => m.id === id))
  return id
}
