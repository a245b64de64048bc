/**
 * The SDK against the real local stack: login and refresh, the outbox states, every event kind,
 * uploads with progress, search, and the error paths. Run after `npm run build`.
 */
import { createHash, randomBytes } from "node:crypto"
import t from "tap"
import { CoveClient, FrameError, HttpError, type OutboxEntry, type Tokens } from "../../sdk/src/index"
import { eventually } from "../support/servers"
import { PASSWORD, recorder, text, until, world } from "./world"

t.test("the SDK on the local stack", async (t) => {
  const w = await world(t)
  const alice = await w.user("alice")
  const bob = await w.user("bob", w.edges.b)
  const carol = await w.user("carol")
  const mallory = await w.user("mallory")
  await Promise.all([alice.connect(), bob.connect(), mallory.connect()])
  const group = await alice.conversations.create({ kind: "group", title: "团队", members: [bob.user.id] })
  t.equal(alice.lastSeq(group.id), 0, "a conversation it created is watched from its start")

  await t.test("login, refresh (onTokens), me; a refresh token used twice ends the login", async (t) => {
    const refreshed: Tokens[] = []
    const again = await CoveClient.login({
      ...w.options(w.edges.a),
      username: "ALICE",
      password: PASSWORD,
      onTokens: (tk) => refreshed.push(tk),
    })
    t.teardown(() => again.close())
    t.same(again.user, alice.user, "login folds the username's case")
    const before = again.tokens
    const after = await again.refreshTokens()
    t.not(after.refresh_token, before.refresh_token, "a new refresh token")
    t.ok(after.expires_at > Date.now())
    t.same(refreshed, [after], "onTokens hears every refresh")
    t.same((await again.auth.me()).username, "alice")

    const err = await CoveClient.login({
      ...w.options(w.edges.a),
      username: "alice",
      password: "wrong password",
    }).catch((e: unknown) => e)
    t.ok(err instanceof HttpError)
    t.match(err, { status: 401, code: "AUTH_INVALID_CREDENTIALS" })

    // The spent token again: docs/auth.md says the whole login is revoked.
    const thief = w.client({ ...w.options(w.edges.a), tokens: before })
    t.match(await thief.refreshTokens().catch((e: unknown) => e), { status: 401, code: "AUTH_TOKEN_INVALID" })
    t.match(await again.auth.me().catch((e: unknown) => e), { status: 401, code: "AUTH_SESSION_REVOKED" })
  })

  await t.test("a token that expires within 30 s is refreshed before connecting", async (t) => {
    // Not carol: her presence is watched later, and this socket's would linger for the grace period.
    await w.user("erin")
    const login = await CoveClient.login({ ...w.options(w.edges.a), username: "erin", password: PASSWORD })
    const refreshed: Tokens[] = []
    const c = w.client({
      ...w.options(w.edges.a),
      tokens: { ...login.tokens, expires_at: Date.now() + 10_000 },
      onTokens: (tk) => refreshed.push(tk),
    })
    await c.connect()
    t.equal(refreshed.length, 1, "refreshed once")
    t.not(c.tokens.access_token, login.tokens.access_token)
    await c.close()
    t.equal(c.connection, "closed")
  })

  await t.test("send: pending → acked → stored; every member gets it once", async (t) => {
    const states: string[] = []
    alice.on("outbox", (e) => {
      if (e.frame.type === "send" && e.frame.body.kind === "text" && e.frame.body.text === "你好 👋🏽")
        states.push(e.state)
    })
    const aliceSaw = recorder(alice)
    const bobSaw = recorder(bob)
    const entry = alice.send(group.id, text("你好 👋🏽"))
    t.match(entry, { state: "pending", conv: group.id, kind: "send" })
    await until("stored", () => states.includes("stored"))
    t.same(states, ["pending", "acked", "stored"])
    t.same(alice.outbox(), [], "a stored entry leaves the outbox")
    await until("bob has it", () => bobSaw.length === 1)
    for (const seen of [aliceSaw, bobSaw])
      t.match(seen, [{ type: "message", seq: 1, id: entry.id, from: alice.user.id, body: text("你好 👋🏽") }])
  })

  await t.test("edits, reactions, recalls in seq order; typing, reads, presence, membership", async (t) => {
    const bobSaw = recorder(bob)
    const target = (await alice.messages.history(group.id, { after: 0 })).items[0]?.id as string
    const typing: unknown[] = []
    const reads: unknown[] = []
    const presence: unknown[] = []
    const membership: unknown[] = []
    alice.on("typing", (e) => typing.push(e))
    alice.on("read", (e) => reads.push(e))
    alice.on("presence", (e) => presence.push(e))
    alice.on("membership", (e) => membership.push(e))
    // One at a time: a reaction sequenced after the recall would be refused (recalled target).
    alice.edit(group.id, target, text("edited"))
    await until("the edit", () => bobSaw.length === 1)
    bob.react(group.id, target, "👍", "add")
    await until("the reaction", () => bobSaw.length === 2)
    alice.recall(group.id, target)
    await until("the recall", () => bobSaw.length === 3)
    t.match(bobSaw, [
      { type: "edit", seq: 2, target, body: text("edited") },
      { type: "reaction", seq: 3, target, emoji: "👍", op: "add", from: bob.user.id },
      { type: "recall", seq: 4, target },
    ])
    bob.typing(group.id)
    bob.markRead(group.id, 4)
    await until("typing and read", () => typing.length > 0 && reads.length > 0)
    t.same(typing[0], { conv: group.id, user: bob.user.id })
    t.match(reads[0], { conv: group.id, user: bob.user.id, seq: 4 })
    // Stored too: members answer it (read_seq), so receipts are right after a reload.
    const bobRead = async () =>
      (await alice.conversations.members(group.id)).items.find((m) => m.id === bob.user.id)?.read_seq
    await eventually(async () => ((await bobRead()) === 4 ? true : undefined), "bob's read_seq")

    await alice.conversations.addMembers(group.id, [carol.user.id])
    await until("the members hear carol was added", () => membership.length > 0)
    t.match(membership[0], { conv: group.id, added: [carol.user.id], by: alice.user.id })
    await carol.connect()
    await until("carol online", () => presence.length > 0)
    t.same(presence, [{ user: carol.user.id, online: true }])
    t.same(await alice.who([carol.user.id]), { [carol.user.id]: true })
    await carol.close()
    await until("carol offline", () => presence.some((p) => (p as { online: boolean }).online === false))
    t.same(presence.at(-1), { user: carol.user.id, online: false })
  })

  await t.test("a rename and a role change reach the members as conversation events", async (t) => {
    const updates: unknown[] = []
    bob.on("conversation", (u) => updates.push(u))
    await alice.conversations.rename(group.id, "团队 2")
    await until("the rename", () => updates.length > 0)
    t.match(updates[0], { type: "conversation", conv: group.id, title: "团队 2", by: alice.user.id })
    t.equal((await bob.conversations.get(group.id)).title, "团队 2")
  })

  await t.test("upload with progress, byte-exact download, a file message", async (t) => {
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17))
    const progress: Array<[number, number]> = []
    const file = await alice.files.upload(group.id, bytes, {
      name: "季度报告 2026.bin",
      contentType: "application/octet-stream",
      sha256: createHash("sha256").update(bytes).digest("hex"),
      onProgress: (sent, total) => progress.push([sent, total]),
    })
    t.match(file, { status: "ready", size: bytes.byteLength, name: "季度报告 2026.bin" })
    t.ok(progress.length > 3, `progress reported ${progress.length} times`)
    t.ok(
      progress.every(([sent, total], i) => total === bytes.byteLength && sent >= (progress[i - 1]?.[0] ?? 0)),
      "never backwards",
    )
    t.same(progress.at(-1), [bytes.byteLength, bytes.byteLength])
    const download = await bob.files.get(file.id)
    t.match(download, { name: "季度报告 2026.bin", size: bytes.byteLength })
    const got = new Uint8Array(await (await fetch(download.url)).arrayBuffer())
    t.ok(Buffer.from(got).equals(Buffer.from(bytes)), "byte-exact")
    const bobSaw = recorder(bob)
    alice.send(group.id, { kind: "file", file_id: file.id, caption: "the report" })
    await until("the file message", () => bobSaw.length === 1)
    t.match(bobSaw[0], { type: "message", body: { kind: "file", file_id: file.id } })
    t.match(await mallory.files.get(file.id).catch((e: unknown) => e), { status: 404, code: "NOT_FOUND" })
  })

  await t.test("search finds a sent message", async (t) => {
    const entry = alice.send(group.id, text("the zebracorn migration is done"))
    const found = await eventually(
      async () => {
        const page = await bob.search({ q: "zebracorn", conv: group.id })
        return page.items.length > 0 ? page : undefined
      },
      "the message indexed",
      20_000,
    )
    t.match(found.items, [{ conv: group.id, id: entry.id, from: alice.user.id }])
    t.equal(found.next_cursor, null)
    t.match(await bob.search({ q: "   " }).catch((e: unknown) => e), {
      status: 400,
      code: "SEARCH_QUERY_EMPTY",
    })
  })

  await t.test("errors: HttpError codes, failed outbox entries, retry and discard", async (t) => {
    t.match(await alice.conversations.get("no-such-conversation").catch((e: unknown) => e), {
      status: 404,
      code: "NOT_FOUND",
    })
    const failed = (c: CoveClient, id: string) =>
      new Promise<OutboxEntry>((resolve) =>
        c.on("outbox", (e) => e.id === id && e.state === "failed" && resolve(e)),
      )
    const intruder = mallory.send(group.id, text("let me in"))
    t.match(await failed(mallory, intruder.id), { state: "failed", error: { code: "NOT_FOUND" } })
    const empty = alice.send(group.id, text(""))
    t.match(await failed(alice, empty.id), { state: "failed", error: { code: "INVALID_FRAME" } })
    const again = failed(alice, empty.id)
    alice.retry(empty.id)
    t.equal(alice.outbox().find((e) => e.id === empty.id)?.state, "pending", "retry makes it pending")
    t.match(await again, { state: "failed", attempts: 2 })
    alice.discard(empty.id)
    t.same(
      alice.outbox().map((e) => e.id),
      [],
      "discarded",
    )
    const err = await mallory.who([]).catch((e: unknown) => e)
    t.ok(err instanceof FrameError)
    t.match(err, { code: "INVALID_FRAME" })

    // Acked by the edge, then refused by the sequencer: bob may not recall alice's message.
    const hers = alice.send(group.id, text("alice's, not bob's"))
    await new Promise<void>((resolve) => bob.on("message", (m) => m.id === hers.id && resolve()))
    // Answers come asynchronously: listening right after recall() misses nothing but "pending".
    const recall = bob.recall(group.id, hers.id)
    const states: string[] = []
    bob.on("outbox", (e) => e.id === recall.id && states.push(e.state))
    const refused = new Promise<OutboxEntry>((resolve) =>
      bob.on("outbox", (e) => e.id === recall.id && e.state === "failed" && resolve(e)),
    )
    t.match(await refused, { state: "failed", error: { code: "FORBIDDEN" } })
    t.same(states, ["acked", "failed"], "acked first, failed once the sequencer refused it")
  })

  await t.test("a disabled user's client closes with 4004 and does not reconnect", async (t) => {
    const dave = await w.user("dave")
    const errors: Error[] = []
    dave.on("error", (e) => errors.push(e))
    const states: unknown[] = []
    dave.on("connection", (s, info) => states.push([s, info?.code]))
    const closed = new Promise<unknown>((resolve) =>
      dave.on("connection", (s, info) => s === "closed" && resolve(info)),
    )
    await dave.connect()
    const res = await fetch(`${w.stack.gatewayUrl}/function/auth/users/${dave.user.id}/disable`, {
      method: "POST",
      headers: { authorization: `Bearer ${w.admin.tokens.access_token}` },
    })
    t.equal(res.status, 200)
    const info = (await closed) as { code: number }
    // Usually the edge's 4004; if the socket dropped another way first, the reconnect is refused with 403.
    t.ok(info.code === 4004 || info.code === 403, `closed for good (${JSON.stringify(states)})`)
    t.match(errors, [{ code: "AUTH_USER_DISABLED" }])
    t.equal(dave.connection, "closed")
  })
})
