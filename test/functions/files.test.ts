import { randomBytes, randomUUID } from "node:crypto"
import { HeadObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3"
import { connect, type JsMsg } from "nats"
import sharp from "sharp"
import t from "tap"
import { sweep } from "../../functions/files/handler"
import { handle as persist } from "../../functions/persist/handler"
import { handle as thumbnail } from "../../functions/thumbnails/handler"
import { ensureStream } from "../../infra/connector/streams"
import { loadStack } from "../../infra/stack"
import { natsDeliveryBus } from "../../lib/adapters/nats"
import { natsRefusalNotices } from "../../lib/adapters/nats-refusals"
import { natsStoredEventLog } from "../../lib/adapters/nats-stored"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgFileStore } from "../../lib/adapters/pg-files"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { createS3Client, ensureBucket } from "../../lib/adapters/s3"
import { fileKeys, s3ObjectStore } from "../../lib/adapters/s3-objects"
import { sharpThumbnails, thumbnailable } from "../../lib/adapters/sharp-thumbnails"
import type { InboundEvent, NewMessage } from "../../lib/protocol/events"
import { FILES_STREAM, FILES_TOPIC } from "../../lib/protocol/subjects"
import { registerUser, withAuth } from "../support/auth"
import { repoRoot } from "../support/bundles"
import { caller, MiB, sendBytes, serveFiles, sha256 } from "../support/files"
import { errorOf, jsonOf } from "../support/http"
import { eventually, withNats, withPostgres, withS3 } from "../support/servers"

t.test("stack.yml's thumbnails function reads the stream that complete publishes to", async (t) => {
  const spec = loadStack(`${repoRoot}/stack.yml`).functions.find((f) => f.name === "thumbnails")
  t.equal(spec?.topic?.stream, FILES_STREAM)
  t.equal(spec?.topic?.subject, FILES_TOPIC)
})

t.test("files through the embedded store (s3rver), with real tokens, PostgreSQL and NATS", async (t) => {
  const [pgServer, nats, store] = await Promise.all([withPostgres(t), withNats(t), withS3(t)])
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const spec = loadStack(`${repoRoot}/stack.yml`).functions.find((f) => f.name === "thumbnails")
  if (spec?.topic === undefined) throw new Error("thumbnails has no topic")
  await ensureStream(await nc.jetstreamManager(), spec.topic)
  const s3 = createS3Client({
    endpoint: store.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    ...store.credentials,
  })
  t.teardown(() => s3.destroy())
  const bucket = "cove-files"
  t.same(await ensureBucket(s3, bucket, ["http://127.0.0.1:8080"]), {
    encryption: "unsupported",
    lifecycle: "unsupported",
  })
  const auth = await withAuth(t, pgServer, nc)
  const { base, ports } = await serveFiles(t, { auth, nc, s3, bucket })
  const call = caller(base)
  const [alice, bob, mallory] = [
    await registerUser(auth, "alice"),
    await registerUser(auth, "bob"),
    await registerUser(auth, "mallory"),
  ]
  const conversations = pgConversationStore(auth.pool)
  const conv = randomBytes(16).toString("base64url")
  const other = randomBytes(16).toString("base64url")
  await conversations.createGroup(conv, "team", alice.id, [bob.id], auth.clock.now())
  await conversations.createGroup(other, "other", alice.id, [bob.id], auth.clock.now())
  const objectExists = async (key: string) =>
    s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => true,
      (err: unknown) => {
        if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false
        throw err
      },
    )

  const fileMessage = (from: string, file_id: string): NewMessage => ({
    v: 1,
    type: "message",
    id: randomUUID(),
    conv,
    from,
    body: { kind: "file", file_id, caption: "see 附件" },
    ts: new Date().toISOString(),
  })
  /** Runs events through the sequencer (functions/persist), as the connector would. */
  const sequence = (events: readonly InboundEvent[]) =>
    persist(
      {
        function: "persist",
        stream: "COVE_IN",
        consumer: "persist-p0",
        messages: events.map((data, i) => ({
          subject: "cove.in.0",
          seq: i + 1,
          delivered: 1,
          headers: {},
          data,
        })),
      },
      {
        sequencer: pgSequencerStore(auth.pool),
        deliveries: natsDeliveryBus(nc),
        stored: natsStoredEventLog(nc),
        refusals: natsRefusalNotices(nc),
        now: () => new Date(),
      },
    )

  /** Declares, uploads and completes a file; returns its id. */
  const uploaded = async (
    who: typeof alice,
    bytes: Uint8Array,
    decl: { name: string; content_type: string; method?: "PUT" | "POST"; conv?: string; sha?: boolean },
  ) => {
    const res = await call(who, "POST", "/uploads", {
      conv: decl.conv ?? conv,
      name: decl.name,
      size: bytes.length,
      content_type: decl.content_type,
      ...(decl.sha === false ? {} : { sha256: sha256(bytes) }),
      ...(decl.method === undefined ? {} : { method: decl.method }),
    })
    t.equal(res.status, 201, "upload declared")
    const answer = await jsonOf(res)
    const sent = await sendBytes(answer.upload, bytes, decl.name)
    t.ok(sent.ok, `bytes accepted by the store (${sent.status})`)
    const done = await call(who, "POST", `/${answer.id}/complete`)
    t.equal(done.status, 200, "complete")
    return answer.id as string
  }

  t.test("a small file: PUT with signed length and type, byte-exact download, safe headers", async (t) => {
    const bytes = randomBytes(10_000)
    const res = await call(alice, "POST", "/uploads", {
      conv,
      name: "notes.pdf",
      size: bytes.length,
      content_type: "application/pdf",
      sha256: sha256(bytes),
    })
    t.equal(res.status, 201)
    const answer = await jsonOf(res)
    t.match(answer, {
      id: /^[A-Za-z0-9_-]{22}$/,
      upload: { method: "PUT", headers: { "content-type": "application/pdf" } },
    })
    const signed = new URL(answer.upload.url).searchParams.get("X-Amz-SignedHeaders") ?? ""
    t.same(signed.split(";").sort(), ["content-length", "content-type", "host"], "length and type are signed")
    t.ok(
      new URL(answer.upload.url).pathname.endsWith(`/files/${answer.id}/original`),
      "the key comes from the id alone",
    )
    t.ok((await sendBytes(answer.upload, bytes)).ok)
    const done = await call(alice, "POST", `/${answer.id}/complete`)
    t.equal(done.status, 200)
    t.match(await jsonOf(done), {
      id: answer.id,
      conv,
      status: "ready",
      size: 10_000,
      content_type: "application/pdf",
    })
    t.equal((await call(alice, "POST", `/${answer.id}/complete`)).status, 200, "complete again is harmless")

    const redirect = await call(bob, "GET", `/${answer.id}`)
    t.equal(redirect.status, 302)
    t.equal(redirect.headers.get("x-content-type-options"), "nosniff")
    const location = redirect.headers.get("location") ?? ""
    t.match(new URL(location).searchParams.get("X-Amz-Expires"), "300", "short-lived")
    const json = await jsonOf(
      await call(bob, "GET", `/${answer.id}`, undefined, { accept: "application/json" }),
    )
    t.match(json, { name: "notes.pdf", size: 10_000, content_type: "application/pdf", url: /^http/ })
    const got = await fetch(json.url)
    t.equal(got.status, 200)
    t.equal(sha256(new Uint8Array(await got.arrayBuffer())), sha256(bytes), "byte-exact")
    t.equal(
      got.headers.get("content-disposition"),
      `attachment; filename="notes.pdf"; filename*=UTF-8''notes.pdf`,
    )
  })

  t.test("a Chinese file name through a POST form: RFC 6266 + RFC 5987 disposition", async (t) => {
    const bytes = new TextEncoder().encode("季度报告\n".repeat(100))
    const name = "季度报告 2026年.txt"
    const id = await uploaded(alice, bytes, { name, content_type: "text/plain", method: "POST" })
    const json = await jsonOf(await call(bob, "GET", `/${id}`, undefined, { accept: "application/json" }))
    t.equal(json.name, name)
    const got = await fetch(json.url)
    t.equal(sha256(new Uint8Array(await got.arrayBuffer())), sha256(bytes))
    const disposition = got.headers.get("content-disposition") ?? ""
    t.match(disposition, /^attachment; filename="[ -~]+"; filename\*=UTF-8''/)
    const star = disposition.split("filename*=UTF-8''")[1] ?? ""
    t.equal(decodeURIComponent(star), name, "the exact name survives")
    t.notMatch(disposition.split(";")[1] ?? "", /[^\x20-\x7e]/, "the fallback is ASCII")
  })

  t.test("a multipart file: presigned parts, completed by the server, byte-exact", async (t) => {
    const bytes = randomBytes(11 * MiB + 123)
    const res = await call(alice, "POST", "/uploads", {
      conv,
      name: "video.bin",
      size: bytes.length,
      content_type: "application/octet-stream",
      sha256: sha256(bytes),
    })
    t.equal(res.status, 201)
    const answer = await jsonOf(res)
    t.equal(answer.upload, undefined)
    t.equal(answer.multipart.part_size, 5 * MiB)
    t.same(
      answer.multipart.parts.map((p: { number: number; size: number }) => [p.number, p.size]),
      [
        [1, 5 * MiB],
        [2, 5 * MiB],
        [3, MiB + 123],
      ],
    )
    const parts: Array<{ number: number; etag: string }> = []
    for (const part of answer.multipart.parts as Array<{ number: number; size: number; url: string }>) {
      const start = (part.number - 1) * 5 * MiB
      const sent = await fetch(part.url, { method: "PUT", body: bytes.subarray(start, start + part.size) })
      t.ok(sent.ok, `part ${part.number}`)
      parts.push({ number: part.number, etag: sent.headers.get("etag") ?? "" })
    }
    t.match(await errorOf(await call(alice, "POST", `/${answer.id}/complete`)), {
      status: 400,
      code: "INVALID_INPUT",
    })
    const done = await call(alice, "POST", `/${answer.id}/complete`, { parts: parts.reverse() })
    t.equal(done.status, 200, JSON.stringify(await done.clone().json()))
    const json = await jsonOf(
      await call(alice, "GET", `/${answer.id}`, undefined, { accept: "application/json" }),
    )
    const got = new Uint8Array(await (await fetch(json.url)).arrayBuffer())
    t.equal(got.length, bytes.length)
    t.equal(sha256(got), sha256(bytes), "byte-exact")
  })

  t.test("refused at declaration: oversize, a type not allowed, a non-member, bad input", async (t) => {
    const declare = (who: typeof alice, body: Record<string, unknown>) =>
      call(who, "POST", "/uploads", {
        conv,
        name: "a.pdf",
        size: 10,
        content_type: "application/pdf",
        ...body,
      })
    t.match(await errorOf(await declare(alice, { size: 64 * MiB + 1 })), {
      status: 413,
      code: "FILE_TOO_LARGE",
      details: { max_bytes: 64 * MiB },
    })
    t.match(await errorOf(await declare(alice, { content_type: "text/html" })), {
      status: 415,
      code: "FILE_TYPE_NOT_ALLOWED",
    })
    t.match(await errorOf(await declare(mallory, {})), { status: 404, code: "NOT_FOUND" })
    t.match(await errorOf(await declare(alice, { name: "a\u0000b" })), { status: 400, code: "INVALID_INPUT" })
    t.match(await errorOf(await declare(alice, { sha256: "abc" })), { status: 400, code: "INVALID_INPUT" })
    t.match(await errorOf(await call(alice, "POST", "/uploads", {})), { status: 400, code: "INVALID_INPUT" })
    // Without a token, bad input still gets the auth answer: the caller is checked first.
    for (const [method, path] of [
      ["POST", "/uploads"],
      ["POST", "/bad.id/complete"],
      ["GET", "/bad.id"],
    ] as const) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        ...(method === "POST" ? { body: JSON.stringify({ size: -1 }) } : {}),
      })
      t.match(await errorOf(res), { status: 401, code: "AUTH_REQUIRED" }, `${method} ${path}`)
    }
  })

  t.test("complete refuses and deletes what differs from the declaration", async (t) => {
    const declared = async (bytes: Uint8Array, content_type = "application/pdf") => {
      const res = await call(alice, "POST", "/uploads", {
        conv,
        name: "x.pdf",
        size: bytes.length,
        content_type,
        sha256: sha256(bytes),
      })
      return jsonOf(res)
    }
    // Another length than declared: s3rver does not enforce the signed length (ARCHITECTURE.md),
    // so complete must catch it.
    const longer = await declared(randomBytes(1000))
    t.ok((await sendBytes(longer.upload, randomBytes(1500))).ok, "s3rver stores the longer body")
    t.match(await errorOf(await call(alice, "POST", `/${longer.id}/complete`)), {
      status: 422,
      code: "FILE_MISMATCH",
      details: { field: "size", declared: 1000, stored: 1500 },
    })
    t.notOk(await objectExists(fileKeys(longer.id).original), "the object was deleted")
    t.match(await errorOf(await call(bob, "GET", `/${longer.id}`)), { status: 409, code: "FILE_NOT_READY" })

    const typed = await declared(randomBytes(100))
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: fileKeys(typed.id).original,
        Body: randomBytes(100),
        ContentType: "text/html",
      }),
    )
    t.match(await errorOf(await call(alice, "POST", `/${typed.id}/complete`)), {
      code: "FILE_MISMATCH",
      details: { field: "content_type", stored: "text/html" },
    })
    t.notOk(await objectExists(fileKeys(typed.id).original))

    const summed = await declared(randomBytes(100))
    t.ok((await sendBytes(summed.upload, randomBytes(100))).ok, "same length, other bytes")
    t.match(await errorOf(await call(alice, "POST", `/${summed.id}/complete`)), {
      code: "FILE_MISMATCH",
      details: { field: "sha256" },
    })
    t.notOk(await objectExists(fileKeys(summed.id).original))
  })

  t.test("completing a file never uploaded; someone else's file; aborting", async (t) => {
    const res = await call(alice, "POST", "/uploads", {
      conv,
      name: "a.pdf",
      size: 10,
      content_type: "application/pdf",
    })
    const { id } = await jsonOf(res)
    t.match(await errorOf(await call(alice, "POST", `/${id}/complete`)), {
      status: 409,
      code: "FILE_NOT_UPLOADED",
    })
    t.match(await errorOf(await call(bob, "POST", `/${id}/complete`)), { status: 404, code: "NOT_FOUND" })
    t.match(await errorOf(await call(alice, "POST", "/no-such-file/complete")), {
      status: 404,
      code: "NOT_FOUND",
    })
    t.match(await errorOf(await call(alice, "GET", "/bad.id")), { status: 400, code: "INVALID_INPUT" })
    t.equal((await call(alice, "POST", `/${id}/abort`)).status, 204)
    t.equal(await ports.files.get(id), undefined, "the record is gone")
  })

  t.test("a non-member cannot download, and never learns whether the file exists", async (t) => {
    const id = await uploaded(alice, randomBytes(50), { name: "a.pdf", content_type: "application/pdf" })
    const refused = await errorOf(await call(mallory, "GET", `/${id}`))
    t.match(refused, { status: 404, code: "NOT_FOUND" })
    t.same(
      { ...(await errorOf(await call(mallory, "GET", "/AAAAAAAAAAAAAAAAAAAAAA"))), request_id: "" },
      { ...refused, request_id: "" },
    )
  })

  t.test("an expired upload URL is refused by the store", async (t) => {
    const short = await serveFiles(t, { auth, nc, s3, bucket, limits: { uploadTtlSeconds: 1 } })
    const res = await caller(short.base)(alice, "POST", "/uploads", {
      conv,
      name: "late.pdf",
      size: 10,
      content_type: "application/pdf",
    })
    const { upload } = await jsonOf(res)
    const status = await eventually(
      async () => {
        const r = await sendBytes(upload, randomBytes(10))
        return r.status === 403 ? r.status : undefined
      },
      "the URL to expire",
      5_000,
    )
    t.equal(status, 403)
  })

  t.test(
    "file messages: the sequencer refuses files not ready, not the sender's, or of another conversation",
    async (t) => {
      const ready = await uploaded(alice, randomBytes(20), { name: "a.pdf", content_type: "application/pdf" })
      const elsewhere = await uploaded(alice, randomBytes(20), {
        name: "b.pdf",
        content_type: "application/pdf",
        conv: other,
      })
      const pending = (
        await jsonOf(
          await call(alice, "POST", "/uploads", {
            conv,
            name: "p.pdf",
            size: 5,
            content_type: "application/pdf",
          }),
        )
      ).id
      const result = await sequence([
        fileMessage(alice.id, ready),
        fileMessage(bob.id, ready),
        fileMessage(alice.id, elsewhere),
        fileMessage(alice.id, pending),
        fileMessage(alice.id, "nope"),
      ])
      t.equal(result.processed, 1)
      t.same(
        result.rejected.map((r) => [r.seq, r.code]),
        [
          [2, "FILE_NOT_SENDERS"],
          [3, "FILE_OTHER_CONVERSATION"],
          [4, "FILE_NOT_READY"],
          [5, "FILE_NOT_READY"],
        ],
      )
      const { rows } = await auth.pool.query("SELECT body FROM messages WHERE conversation_id = $1", [conv])
      t.same(rows, [{ body: { kind: "file", file_id: ready, caption: "see 附件" } }])
    },
  )

  t.test("an image gets a thumbnail from the event that complete publishes", async (t) => {
    const consumer = await (await nc.jetstreamManager()).consumers.add(FILES_STREAM, {
      ack_policy: "none" as never,
    })
    const png = await sharp({ create: { width: 1200, height: 800, channels: 3, background: "#3a7" } })
      .png()
      .toBuffer()
    const id = await uploaded(alice, png, { name: "photo.png", content_type: "image/png" })
    const js = nc.jetstream()
    const c = await js.consumers.get(FILES_STREAM, consumer.name)
    const events: JsMsg[] = []
    await eventually(async () => {
      const m = await c.next({ expires: 1000 })
      if (m !== null) events.push(m)
      return events.some((e) => e.json<{ id: string }>().id === id) ? true : undefined
    }, "the file.ready event")
    const event = events.find((e) => e.json<{ id: string }>().id === id) as JsMsg
    t.match(event.json(), { v: 1, type: "file.ready", id, conv, content_type: "image/png", size: png.length })
    const result = await thumbnail(
      {
        function: "thumbnails",
        stream: FILES_STREAM,
        consumer: "thumbnails-p0",
        messages: [{ subject: event.subject, seq: event.seq, delivered: 1, headers: {}, data: event.json() }],
      },
      {
        files: pgFileStore(auth.pool),
        objects: s3ObjectStore(s3, bucket),
        thumbnails: sharpThumbnails(),
        thumbnailable,
        maxPixels: 320,
        maxSourceBytes: 10 * MiB,
      },
    )
    t.same(result, { processed: 1, rejected: [] })
    const json = await jsonOf(await call(bob, "GET", `/${id}`, undefined, { accept: "application/json" }))
    t.match(json.thumbnail, { width: 320, height: 213, url: /^http/ })
    const thumb = Buffer.from(await (await fetch(json.thumbnail.url)).arrayBuffer())
    t.match(await sharp(thumb).metadata(), { format: "webp", width: 320, height: 213 })
    t.equal((await call(bob, "GET", `/${id}/thumbnail`)).status, 302)
  })

  t.test(
    "swept: stale pending uploads, and ready files no message shows (never sent, recalled)",
    async (t) => {
      const res = await call(alice, "POST", "/uploads", {
        conv,
        name: "s.pdf",
        size: 30,
        content_type: "application/pdf",
      })
      const { id, upload } = await jsonOf(res)
      t.ok((await sendBytes(upload, randomBytes(30))).ok)
      const pdf = { name: "k.pdf", content_type: "application/pdf" }
      const unsent = await uploaded(alice, randomBytes(30), pdf)
      const sent = await uploaded(alice, randomBytes(30), pdf)
      const recalled = await uploaded(alice, randomBytes(30), pdf)
      const [toKeep, toRecall] = [fileMessage(alice.id, sent), fileMessage(alice.id, recalled)]
      const recall: InboundEvent = {
        v: 1,
        type: "recall",
        id: randomUUID(),
        conv,
        from: alice.id,
        target: toRecall.id,
        ts: new Date().toISOString(),
      }
      t.match(await sequence([toKeep, toRecall, recall]), { processed: 3, rejected: [] })
      t.same(await sweep(ports), { pending: 0, unreferenced: 0 }, "nothing is old enough yet")

      auth.clock.advance(86_400_000 + 1000)
      t.ok((await sweep(ports)).pending >= 1, "pending uploads go after a day")
      t.equal(await ports.files.get(id), undefined)
      t.notOk(await objectExists(fileKeys(id).original))
      t.equal((await ports.files.get(unsent))?.status, "ready", "an unsent ready file keeps its grace")

      auth.clock.advance(86_400_000)
      t.ok((await sweep(ports)).unreferenced >= 2)
      for (const gone of [unsent, recalled]) {
        t.equal(await ports.files.get(gone), undefined)
        t.notOk(await objectExists(fileKeys(gone).original))
      }
      t.equal((await ports.files.get(sent))?.status, "ready", "a file that a message shows stays")
      t.ok(await objectExists(fileKeys(sent).original))
    },
  )
})
