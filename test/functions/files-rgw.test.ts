/**
 * The files function against a real S3 store, Ceph RGW (test/support/ceph.ts): the store itself
 * refuses bodies that differ from the presigned declaration, and nothing is stored; round trips
 * and complete's checks behave as with the embedded store.
 */
import { randomBytes } from "node:crypto"
import { HeadObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3"
import { connect } from "nats"
import t from "tap"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { createS3Client, ensureBucket } from "../../lib/adapters/s3"
import { fileKeys } from "../../lib/adapters/s3-objects"
import { registerUser, withAuth } from "../support/auth"
import { withRgw } from "../support/ceph"
import { caller, MiB, sendBytes, serveFiles, sha256 } from "../support/files"
import { errorOf, jsonOf } from "../support/http"
import { withNats, withPostgres } from "../support/servers"

t.test("files against Ceph RGW", async (t) => {
  const [rgw, pgServer, nats] = await Promise.all([withRgw(t), withPostgres(t), withNats(t)])
  t.comment(`Ceph RGW ready in ${rgw.startupMs} ms`)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const s3 = createS3Client({
    endpoint: rgw.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    ...rgw.credentials,
  })
  t.teardown(() => s3.destroy())
  const bucket = "cove-files"
  const state = await ensureBucket(s3, bucket, ["http://127.0.0.1:8080"])
  t.equal(state.lifecycle, "set", "RGW takes the lifecycle rule")
  t.comment(`RGW server-side encryption: ${state.encryption}`)
  t.same(await ensureBucket(s3, bucket, ["http://127.0.0.1:8080"]), state, "setting up again changes nothing")

  const auth = await withAuth(t, pgServer, nc)
  const { base } = await serveFiles(t, { auth, nc, s3, bucket })
  const call = caller(base)
  const alice = await registerUser(auth, "alice")
  const conv = randomBytes(16).toString("base64url")
  await pgConversationStore(auth.pool).createGroup(conv, "team", alice.id, [], auth.clock.now())
  const stored = (id: string) =>
    s3.send(new HeadObjectCommand({ Bucket: bucket, Key: fileKeys(id).original })).then(
      () => true,
      (err: unknown) => {
        if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false
        throw err
      },
    )
  const declare = async (
    size: number,
    o: { method?: "PUT" | "POST"; type?: string; name?: string; sha?: string } = {},
  ) => {
    const res = await call(alice, "POST", "/uploads", {
      conv,
      name: o.name ?? "report.pdf",
      size,
      content_type: o.type ?? "application/pdf",
      ...(o.method === undefined ? {} : { method: o.method }),
      ...(o.sha === undefined ? {} : { sha256: o.sha }),
    })
    t.equal(res.status, 201)
    return jsonOf(res)
  }

  t.test("the store refuses a body of another length than declared, and stores nothing", async (t) => {
    const put = await declare(1000)
    t.equal((await sendBytes(put.upload, randomBytes(1500))).status, 403, "PUT: longer body")
    t.equal((await sendBytes(put.upload, randomBytes(500))).status, 403, "PUT: shorter body")
    t.equal(
      (
        await fetch(put.upload.url, {
          method: "PUT",
          headers: { "content-type": "text/html" },
          body: randomBytes(1000),
        })
      ).status,
      403,
      "PUT: another type",
    )
    t.notOk(await stored(put.id), "nothing stored")
    t.match(await errorOf(await call(alice, "POST", `/${put.id}/complete`)), { code: "FILE_NOT_UPLOADED" })

    const post = await declare(1000, { method: "POST" })
    t.equal((await sendBytes(post.upload, randomBytes(1500))).status, 400, "POST: longer body")
    t.equal((await sendBytes(post.upload, randomBytes(999))).status, 400, "POST: shorter body")
    t.notOk(await stored(post.id), "nothing stored")
  })

  t.test("round trips: byte-exact, a Chinese name, multipart", async (t) => {
    const small = randomBytes(4096)
    const a = await declare(small.length, { sha: sha256(small) })
    t.ok((await sendBytes(a.upload, small)).ok)
    t.equal((await call(alice, "POST", `/${a.id}/complete`)).status, 200)
    const got = await jsonOf(await call(alice, "GET", `/${a.id}`, undefined, { accept: "application/json" }))
    t.equal(sha256(new Uint8Array(await (await fetch(got.url)).arrayBuffer())), sha256(small))

    const name = "会议纪要（终稿）.pdf"
    const b = await declare(small.length, { method: "POST", name })
    t.equal((await sendBytes(b.upload, small, name)).status, 204)
    t.equal((await call(alice, "POST", `/${b.id}/complete`)).status, 200)
    const res = await fetch(
      (await jsonOf(await call(alice, "GET", `/${b.id}`, undefined, { accept: "application/json" }))).url,
    )
    const disposition = res.headers.get("content-disposition") ?? ""
    t.equal(decodeURIComponent(disposition.split("filename*=UTF-8''")[1] ?? ""), name)

    const big = randomBytes(11 * MiB)
    const m = await declare(big.length, { type: "application/octet-stream", sha: sha256(big) })
    const parts: Array<{ number: number; etag: string }> = []
    for (const part of m.multipart.parts as Array<{ number: number; size: number; url: string }>) {
      const start = (part.number - 1) * m.multipart.part_size
      const wrong = await fetch(part.url, { method: "PUT", body: big.subarray(start, start + part.size - 1) })
      t.equal(wrong.status, 403, `part ${part.number}: another length is refused`)
      const sent = await fetch(part.url, { method: "PUT", body: big.subarray(start, start + part.size) })
      t.ok(sent.ok, `part ${part.number}`)
      parts.push({ number: part.number, etag: sent.headers.get("etag") ?? "" })
    }
    const done = await call(alice, "POST", `/${m.id}/complete`, { parts })
    t.equal(done.status, 200)
    const url = (
      await jsonOf(await call(alice, "GET", `/${m.id}`, undefined, { accept: "application/json" }))
    ).url
    t.equal(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer())), sha256(big), "byte-exact")
  })

  t.test("complete refuses and deletes an object whose type or checksum differs", async (t) => {
    const bytes = randomBytes(100)
    const typed = await declare(100)
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: fileKeys(typed.id).original,
        Body: bytes,
        ContentType: "text/html",
      }),
    )
    t.match(await errorOf(await call(alice, "POST", `/${typed.id}/complete`)), {
      status: 422,
      code: "FILE_MISMATCH",
      details: { field: "content_type" },
    })
    t.notOk(await stored(typed.id))
    const summed = await declare(100, { sha: sha256(bytes) })
    t.ok((await sendBytes(summed.upload, randomBytes(100))).ok)
    t.match(await errorOf(await call(alice, "POST", `/${summed.id}/complete`)), {
      details: { field: "sha256" },
    })
    t.notOk(await stored(summed.id))
  })
})
