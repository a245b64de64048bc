/**
 * Files end to end on the local stack (`npm start`'s servers and bundles): upload through a
 * presigned URL, complete, the connector feeding the thumbnails bundle (sharp loaded at run
 * time), a download, and a file message sequenced into history. Run after `npm run build`.
 */
import { randomUUID } from "node:crypto"
import sharp from "sharp"
import t from "tap"
import { sendBytes, sha256 } from "../support/files"
import { type Json, jsonOf } from "../support/http"
import { eventually } from "../support/servers"
import { withStack } from "../support/stack"

t.test("a picture: uploaded, thumbnailed by the event function, downloaded, sent as a message", async (t) => {
  const stack = await withStack(t)
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    accept?: string,
  ): Promise<Json> => {
    const res = await fetch(`${stack.gatewayUrl}/function/${path}`, {
      method,
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(accept === undefined ? {} : { accept }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: await jsonOf(res) }
  }
  const alice = (
    await call("POST", "auth/register", { username: "alice", password: "correct horse battery" })
  ).body
  const token = alice.access_token as string
  const conv = (await call("POST", "conversations", { kind: "group", title: "photos" }, token)).body
    .id as string

  const png = await sharp({ create: { width: 640, height: 480, channels: 3, background: "#c33" } })
    .png()
    .toBuffer()
  const declared = await call(
    "POST",
    "files/uploads",
    { conv, name: "照片.png", size: png.length, content_type: "image/png", sha256: sha256(png) },
    token,
  )
  t.equal(declared.status, 201)
  t.ok((await sendBytes(declared.body.upload, png)).ok, "the store took the bytes")
  const id = declared.body.id as string
  t.match(await call("POST", `files/${id}/complete`, undefined, token), {
    status: 200,
    body: { status: "ready" },
  })

  const withThumbnail = await eventually(async () => {
    const got = await call("GET", `files/${id}`, undefined, token, "application/json")
    return got.body.thumbnail === undefined ? undefined : got.body
  }, "the thumbnail")
  t.match(withThumbnail.thumbnail, { width: 320, height: 240 })
  const original = new Uint8Array(await (await fetch(withThumbnail.url)).arrayBuffer())
  t.equal(sha256(original), sha256(png), "byte-exact")
  const thumb = Buffer.from(await (await fetch(withThumbnail.thumbnail.url)).arrayBuffer())
  t.match(await sharp(thumb).metadata(), { format: "webp", width: 320, height: 240 })

  const message = { id: randomUUID(), conv, body: { kind: "file", file_id: id, caption: "看看" } }
  t.equal((await call("POST", "messages", message, token)).status, 202)
  const history = await eventually(async () => {
    const page = await call("GET", `messages?conv=${conv}`, undefined, token)
    return page.body.items?.length > 0 ? page.body.items : undefined
  }, "the file message in history")
  t.match(history[0], { id: message.id, body: message.body })
})
