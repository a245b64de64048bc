import { randomBytes, randomUUID } from "node:crypto"
import { connect } from "nats"
import t from "tap"
import { endSessions } from "../../functions/auth/handler"
import { routes } from "../../functions/conversations/routes"
import { natsConversationUpdates } from "../../lib/adapters/nats-conversation-updates"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { defineFunction } from "../../lib/function/harness"
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../lib/protocol/tokens"
import { collect, registerUser, serveForTest, withAuth } from "../support/auth"
import { errorOf, jsonOf } from "../support/http"
import { eventually, testLog, withNats, withPostgres } from "../support/servers"

t.test("conversations over HTTP, with real tokens, PostgreSQL and NATS", async (t) => {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const auth = await withAuth(t, pgServer, nc)
  const conversationsFunction = (maxMembers: number) =>
    defineFunction({
      name: "conversations",
      log: testLog,
      ports: async () => ({
        conversations: pgConversationStore(auth.pool),
        control: auth.control,
        updates: natsConversationUpdates(nc),
        auth: pgAuthenticator(
          auth.pool,
          { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE },
          auth.clock.now,
        ),
        maxMembers,
        now: auth.clock.now,
        newId: () => randomBytes(16).toString("base64url"),
      }),
      routes,
    })
  const base = await serveForTest(t, conversationsFunction(4), 100_000)

  const user = (name: string) => registerUser(auth, name)
  const [alice, bob, carol, dave, erin] = [
    await user("alice"),
    await user("bob"),
    await user("carol"),
    await user("dave"),
    await user("erin"),
  ]
  if (!alice || !bob || !carol || !dave || !erin) throw new Error("users")
  const call = (who: { token: string } | undefined, method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        "content-type": "application/json",
        ...(who === undefined ? {} : { authorization: `Bearer ${who.token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })

  t.test("a direct conversation is created once per pair", async (t) => {
    const bobEvents = await collect(t, nc, `cove.user.${bob.id}.membership`)
    const deliveries = await collect(t, nc, "cove.deliver.>")
    const first = await call(alice, "POST", "/", { kind: "direct", members: [bob.id] })
    t.equal(first.status, 201)
    const created = await jsonOf(first)
    t.match(created, { kind: "direct", title: null, created_by: alice.id })
    t.match(created.id, /^[A-Za-z0-9_-]{22}$/)
    const again = await call(alice, "POST", "/", { kind: "direct", members: [bob.id] })
    t.equal(again.status, 200)
    t.equal((await jsonOf(again)).id, created.id)
    const fromBob = await call(bob, "POST", "/", { kind: "direct", members: [alice.id] })
    t.equal((await jsonOf(fromBob)).id, created.id, "the same conversation from the other side")
    const eventId = (bobEvents[0] as { id?: string } | undefined)?.id
    t.same(
      bobEvents,
      [
        {
          type: "membership",
          id: eventId,
          conv: created.id,
          added: [bob.id],
          removed: [],
          by: alice.id,
          members: 2,
        },
      ],
      "bob's own copy names only him",
    )
    t.same(
      deliveries,
      [
        {
          type: "membership",
          id: eventId,
          conv: created.id,
          added: [alice.id, bob.id],
          removed: [],
          by: alice.id,
          members: 2,
        },
      ],
      "the members' copy names everyone, under the same id, with the member count",
    )
    t.equal(bobEvents.length, 1, "told once, when it was created")
    t.equal(
      (await errorOf(await call(alice, "POST", "/", { kind: "direct", members: [alice.id] }))).code,
      "INVALID_INPUT",
    )
    // A direct conversation has fixed members and no title: said as such, not as a missing role.
    const fixed = await errorOf(await call(alice, "PATCH", `/${created.id}`, { title: "ours" }))
    t.match(fixed, { status: 400, code: "INVALID_INPUT", message: /fixed members/ })
    t.match(await errorOf(await call(alice, "POST", `/${created.id}/members`, { members: [carol.id] })), {
      status: 400,
      code: "INVALID_INPUT",
    })
    t.match(
      await errorOf(await call(carol, "PATCH", `/${created.id}`, { title: "theirs" })),
      {
        status: 404,
        code: "NOT_FOUND",
      },
      "a non-member learns nothing, not even the kind",
    )
  })

  t.test("groups: roles, members, rename, leave, and the member limit", async (t) => {
    const created = await call(alice, "POST", "/", {
      kind: "group",
      title: "  项目 Cove 🚀 ",
      members: [bob.id, carol.id],
    })
    t.equal(created.status, 201)
    const group = await jsonOf(created)
    t.equal(group.title, "项目 Cove 🚀", "title trimmed, Unicode kept")
    const id = group.id as string
    const told = (await collect(t, nc, `cove.deliver.${id}`)) as { type: string }[]

    const roles = await jsonOf(await call(bob, "GET", `/${id}/members`))
    t.same(
      Object.fromEntries(roles.items.map((m: { username: string; role: string }) => [m.username, m.role])),
      { alice: "owner", bob: "member", carol: "member" },
    )
    t.equal(
      (await errorOf(await call(bob, "POST", `/${id}/members`, { members: [dave.id] }))).code,
      "FORBIDDEN",
    )
    t.equal((await call(alice, "PATCH", `/${id}/members/${bob.id}`, { role: "admin" })).status, 200)
    t.same(await jsonOf(await call(bob, "POST", `/${id}/members`, { members: [dave.id] })), {
      added: [dave.id],
    })
    t.equal(
      (await errorOf(await call(alice, "POST", `/${id}/members`, { members: [erin.id] }))).code,
      "INVALID_INPUT",
      "a fifth member is over the limit of 4",
    )
    t.equal((await jsonOf(await call(bob, "PATCH", `/${id}`, { title: "Renamed" }))).title, "Renamed")
    await eventually(
      async () => (told.some((e) => e.type === "conversation" && "title" in e) ? true : undefined),
      "rename told",
    )
    t.match(
      told.filter((e) => e.type === "conversation"),
      [
        { type: "conversation", id: String, conv: id, role: { user: bob.id, role: "admin" }, by: alice.id },
        { type: "conversation", id: String, conv: id, title: "Renamed", by: bob.id },
      ],
      "members are told of a role change and a rename",
    )
    t.equal((await errorOf(await call(carol, "PATCH", `/${id}`, { title: "Mine" }))).code, "FORBIDDEN")

    const carolEvents = await collect(t, nc, `cove.user.${carol.id}.membership`)
    t.equal((await call(bob, "DELETE", `/${id}/members/${carol.id}`)).status, 200)
    t.match(carolEvents, [{ conv: id, removed: [carol.id], by: bob.id, members: 3 }])
    t.match(
      told.filter((e) => e.type === "membership"),
      [{ added: [dave.id], removed: [], by: bob.id, members: 4 }],
      "membership events carry the member count after the change (edges size presence by it)",
    )
    t.equal(
      (await errorOf(await call(carol, "GET", `/${id}`))).code,
      "NOT_FOUND",
      "a removed member sees nothing",
    )
    t.equal((await errorOf(await call(bob, "DELETE", `/${id}/members/${alice.id}`))).code, "FORBIDDEN")
    t.match(await errorOf(await call(alice, "PATCH", `/${id}/members/${alice.id}`, { role: "member" })), {
      status: 403,
      code: "FORBIDDEN",
      message: /owner's role/,
    })

    t.equal((await call(alice, "POST", `/${id}/leave`)).status, 200)
    t.equal((await jsonOf(await call(bob, "GET", `/${id}`))).role, "owner", "the admin inherits ownership")
  })

  t.test("my conversations list the last message and unread count", async (t) => {
    const { id } = await jsonOf(
      await call(carol, "POST", "/", { kind: "group", title: "unread", members: [dave.id] }),
    )
    await auth.pool.query("INSERT INTO conversation_heads VALUES ($1, 3)", [id])
    for (const [seq, from, text] of [
      [1, carol.id, "one"],
      [2, dave.id, "two"],
      [3, dave.id, "三"],
    ] as const) {
      await auth.pool.query(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, body, sent_at) VALUES ($1, $2, gen_random_uuid(), $3, $4, now())",
        [id, seq, from, { kind: "text", text }],
      )
    }
    const mine = await jsonOf(await call(carol, "GET", "/"))
    const entry = mine.items.find((c: { id: string }) => c.id === id)
    t.match(entry, {
      unread: 2,
      last_read_seq: 0,
      last_message: { seq: 3, from: dave.id, body: { text: "三" } },
    })
    const theirs = await jsonOf(await call(dave, "GET", "/"))
    t.equal(
      theirs.items.find((c: { id: string }) => c.id === id).unread,
      1,
      "one's own messages are not unread",
    )
    await auth.pool.query(
      "UPDATE conversation_members SET last_read_seq = 2 WHERE conversation_id = $1 AND user_id = $2",
      [id, dave.id],
    )
    const members = await jsonOf(await call(carol, "GET", `/${id}/members`))
    t.same(
      Object.fromEntries(members.items.map((m: { id: string; read_seq: number }) => [m.id, m.read_seq])),
      { [carol.id]: 0, [dave.id]: 2 },
      "members carry their read position",
    )
    const listed = await jsonOf(await call(dave, "GET", "/?view=ids"))
    t.ok(listed.ids.includes(id), "the ids view lists every conversation of the caller")
    t.same(listed.ids, [...listed.ids].sort())
    t.equal(listed.member_counts.length, listed.ids.length, "a member count per conversation, for edges")
    t.equal(listed.member_counts[listed.ids.indexOf(id)], 2)
  })

  t.test(
    "a group of 10,000 in one request; each member's own copy of the event names only them",
    async (t) => {
      // stack.yml gives the conversations function 512 KiB bodies: 9,999 ids fit.
      const big = await serveForTest(t, conversationsFunction(10_000), 512 * 1024)
      const { rows } = await auth.pool.query<{ id: string }>(
        `INSERT INTO users (id, username, username_key, password_hash, created_at)
       SELECT gen_random_uuid(), 'crowd' || i, 'crowd' || i, 'x', now() FROM generate_series(1, 9999) AS i
       RETURNING id`,
      )
      const perUser = (await collect(t, nc, "cove.user.*.membership")) as { conv: string; added: string[] }[]
      const toMembers = (await collect(t, nc, "cove.deliver.>")) as { conv: string; added: string[] }[]
      const created = await fetch(`${big}/`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${dave.token}` },
        body: JSON.stringify({ kind: "group", title: "everyone", members: rows.map((r) => r.id) }),
      })
      t.equal(created.status, 201)
      const { id } = await jsonOf(created)
      const counted = await auth.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM conversation_members WHERE conversation_id = $1",
        [id],
      )
      t.equal(counted.rows[0]?.n, 10_000)
      await eventually(
        async () => (perUser.filter((e) => e.conv === id).length === 10_000 ? true : undefined),
        "a membership message per member",
      )
      t.ok(
        perUser.filter((e) => e.conv === id).every((e) => e.added.length === 1),
        "each copy for a member names only that member (10,000 small messages, not 10,000 lists)",
      )
      const whole = toMembers.filter((e) => e.conv === id)
      t.equal(whole.length, 1, "the members' copy is published once")
      t.equal(whole[0]?.added.length, 10_000)
      const full = await fetch(`${big}/${id}/members`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${dave.token}` },
        body: JSON.stringify({ members: [erin.id] }),
      })
      t.equal((await errorOf(full)).code, "INVALID_INPUT", "a 10,001st member is refused")
    },
  )

  t.test("the list pages with a cursor, by last activity, each conversation once", async (t) => {
    const [paula, quinn] = [await user("paula"), await user("quinn")]
    const t0 = auth.clock.now().getTime()
    const groups: string[] = []
    for (let i = 0; i < 7; i++) {
      const created = await call(paula, "POST", "/", {
        kind: "group",
        title: `page ${i}`,
        members: [quinn.id],
      })
      groups.push((await jsonOf(created)).id)
      auth.clock.advance(1000)
    }
    const g = (i: number) => groups[i] as string
    // Messages go through the sequencer, which keeps each conversation's last activity.
    const sequencer = pgSequencerStore(auth.pool)
    const say = async (conv: string, at: number) => {
      const ts = new Date(at).toISOString()
      const body = { kind: "text" as const, text: `at ${ts}` }
      const applied = await sequencer.apply(
        [{ v: 1, type: "message", id: randomUUID(), conv, from: quinn.id, body, ts }],
        auth.clock.now(),
      )
      t.equal(applied.stored.length, 1, `stored in ${conv}`)
    }
    await say(g(1), t0 + 100_000)
    await say(g(4), t0 + 90_000)
    // g0's message has the time g6 was created at: a tie, broken by id (bytewise).
    await say(g(0), t0 + 6_000)
    const tied = [g(0), g(6)].sort()
    const expected = [g(1), g(4), ...tied, g(5), g(3), g(2)]
    type Page = { items: { id: string; unread: number; last_message: { ts: string } | null }[] }
    const page = async (query: string): Promise<Page & { next_cursor: string | null }> => {
      const res = await call(paula, "GET", `/?${query}`)
      t.equal(res.status, 200, query)
      return jsonOf(res)
    }
    const ids = (p: Page) => p.items.map((c) => c.id)

    const first = await page("limit=3")
    t.same(ids(first), expected.slice(0, 3), "the most recently active first")
    t.match(first.next_cursor, /^[A-Za-z0-9_-]+$/, "an opaque base64url cursor")
    t.match(first.items[0], { unread: 1, last_message: { ts: new Date(t0 + 100_000).toISOString() } })
    const second = await page(`limit=3&cursor=${first.next_cursor}`)
    t.same(ids(second), expected.slice(3, 6))
    t.match(second.items[1], { id: g(5), unread: 0, last_message: null }, "later pages have summaries too")
    const third = await page(`limit=3&cursor=${second.next_cursor}`)
    t.same(ids(third), expected.slice(6))
    t.equal(third.next_cursor, null, "the last page says so")
    t.same([...ids(first), ...ids(second), ...ids(third)].sort(), [...groups].sort(), "each exactly once")
    const whole = await page("limit=7")
    t.same(ids(whole), expected, "the same order in one page")
    t.equal(whole.next_cursor, null, "a full page that ends the list is not followed by an empty one")

    // Activity between pages moves conversations to the front; the cursor is a position, not an
    // offset, so the rest of the list is neither skipped nor repeated.
    const before = await page("limit=3")
    t.same(ids(before), expected.slice(0, 3))
    await say(expected[4] as string, t0 + 200_000)
    await say(expected[1] as string, t0 + 210_000)
    // A message stamped earlier (an edge with a slow clock) does not move a conversation back,
    // where it would be listed a second time.
    await say(expected[0] as string, t0 - 3_600_000)
    const after = await page(`limit=3&cursor=${before.next_cursor}`)
    t.same(
      ids(after),
      [expected[3], expected[5], expected[6]],
      "not yet listed and still inactive: all listed; the one that became active is at the front now",
    )
    t.equal(after.next_cursor, null, "nothing listed before comes back, however active")
    t.same(
      ids(await page("limit=3")),
      [expected[1], expected[4], expected[0]],
      "the first page again shows what became active, latest first",
    )
  })

  t.test("a cursor that the list did not make is invalid input", async (t) => {
    const b64 = (text: string) => Buffer.from(text).toString("base64url")
    for (const cursor of [
      "",
      "%%%",
      "a".repeat(201),
      b64("not json"),
      b64("{}"),
      b64('[1.5,"abc"]'),
      b64('["1","abc"]'),
      b64('[1,"bad.id"]'),
      b64('[1,"abc",2]'),
    ]) {
      const res = await call(alice, "GET", `/?limit=3&cursor=${encodeURIComponent(cursor)}`)
      t.match(
        await errorOf(res),
        { status: 400, code: "INVALID_INPUT", details: { fields: [{ field: "cursor" }] } },
        JSON.stringify(cursor),
      )
    }
  })

  t.test("every door checks the caller", async (t) => {
    t.equal((await errorOf(await call(undefined, "GET", "/"))).code, "AUTH_REQUIRED")
    t.equal((await errorOf(await call({ token: "not.a.token" }, "GET", "/"))).code, "AUTH_TOKEN_INVALID")
    t.equal((await errorOf(await call(erin, "GET", "/no-such-conv/members"))).code, "NOT_FOUND")
    t.equal((await errorOf(await call(erin, "GET", "/bad.id"))).code, "INVALID_INPUT")
    // Without a token, bad input still gets the auth answer: the caller is checked first.
    for (const [method, path, body] of [
      ["GET", "/bad.id", undefined],
      ["GET", "/?limit=-1", undefined],
      ["GET", "/?cursor=%25%25", undefined],
      ["PATCH", "/bad.id", { title: 42 }],
      ["POST", "/bad.id/members", { members: "nobody" }],
      ["PATCH", "/bad.id/members/not-a-user", { role: "emperor" }],
    ] as const) {
      t.equal(
        (await errorOf(await call(undefined, method, path, body))).code,
        "AUTH_REQUIRED",
        `${method} ${path}`,
      )
    }
    t.equal(
      (await errorOf(await call(erin, "POST", "/", { kind: "group", members: [] }))).code,
      "INVALID_INPUT",
    )
    const erinList = await jsonOf(await call(erin, "GET", "/"))
    t.same(erinList.items, [], "a user in no conversation sees none")
    // Ending every session of a user closes every door at once, before the token expires.
    await endSessions(erin.id, "logout_everywhere", auth.clock.now(), auth.ports)
    t.equal((await errorOf(await call(erin, "GET", "/"))).code, "AUTH_SESSION_REVOKED")
  })
})
