/**
 * The search function over HTTP against a real index: the fixture corpus (every query returns
 * exactly its expected messages), membership, snippets, pagination and refusals.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import t from "tap"
import { encodeCursor, searchDigest } from "../../functions/search/cursor"
import { repoRoot } from "../support/bundles"
import { errorOf, type Json, jsonOf } from "../support/http"
import { searchFixture, type User } from "../support/search"
import { eventually } from "../support/servers"

type Corpus = {
  conversations: Record<string, string[]>
  messages: Array<{ key: string; conv: string; from: string; text: string }>
  queries: Array<{ q: string; expect: string[]; as?: string; conv?: string; why?: string }>
}

const corpus = JSON.parse(readFileSync(join(repoRoot, "test/fixtures/search/corpus.json"), "utf8")) as Corpus

t.test("search over the fixture corpus", async (t) => {
  const f = await searchFixture(t)
  const users = new Map<string, User>()
  for (const name of ["alice", "bob", "carol"]) users.set(name, await f.user(name))
  const who = (name: string) => users.get(name) as User
  for (const [conv, members] of Object.entries(corpus.conversations)) {
    const [owner, ...rest] = members.map(who)
    await f.group(conv, owner as User, rest)
  }
  const ids = new Map<string, string>()
  const keys = new Map<string, string>()
  const events = corpus.messages.map((m) => {
    const e = f.message(m.conv, who(m.from), m.text)
    ids.set(m.key, e.id)
    keys.set(e.id, m.key)
    return e
  })
  await f.store(events)
  await eventually(async () => {
    const { rows } = await f.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM search_docs")
    return rows[0]?.n === events.length ? true : undefined
  }, "every message indexed through the connector")

  const ask = async (user: User, params: Record<string, string>) => {
    const res = await f.search(user, { limit: "100", ...params })
    t.equal(res.status, 200, JSON.stringify(params))
    return (await jsonOf(res)) as Json
  }

  t.test("every query returns exactly its expected messages", async (t) => {
    for (const query of corpus.queries) {
      const answer = await ask(who(query.as ?? "alice"), {
        q: query.q,
        ...(query.conv === undefined ? {} : { conv: query.conv }),
      })
      const got = (answer.items as Array<{ id: string }>).map((i) => keys.get(i.id) ?? i.id).sort()
      t.same(
        got,
        [...query.expect].sort(),
        `${query.q}${query.as ? ` as ${query.as}` : ""} ${query.why ?? ""}`,
      )
      t.equal(answer.next_cursor, null)
    }
  })

  t.test("hits carry conversation, seq, id, sender, time and an escaped, highlighted snippet", async (t) => {
    const hit = (await ask(who("alice"), { q: "用Python" })).items[0]
    t.match(hit, { conv: "team", id: ids.get("t4"), from: who("bob").id })
    t.type(hit.seq, "number")
    t.ok(Number.isFinite(Date.parse(hit.ts)))
    t.equal(hit.snippet, "我<mark>用Python</mark>写代码")
    const cjk = (await ask(who("alice"), { q: "北京大学" })).items.map((i: Json) => i.snippet).sort()
    t.same(cjk, ["<mark>北京大学</mark>和清华大学", "我们明天在<mark>北京大学</mark>开会"])
    const html = (await ask(who("alice"), { q: "alert" })).items[0].snippet
    t.equal(
      html,
      "&lt;script&gt;<mark>alert</mark>(&#39;x&#39;)&lt;/script&gt; &amp; Tom&#39;s &quot;quotes&quot;",
    )
    const folded = (await ask(who("alice"), { q: "ｐｙｔｈｏｎ" })).items.map((i: Json) => i.snippet).sort()
    t.same(folded, ["<mark>Python</mark> 3.12 released today", "我用<mark>Python</mark>写代码"])
    t.equal(
      (await ask(who("alice"), { q: "ＡＢＣ株式" })).items[0].snippet,
      "<mark>ＡＢＣ株式</mark>会社のレポート",
    )
  })

  t.test("relevance first, then the newest; filters by sender and time", async (t) => {
    const all = (await ask(who("alice"), { q: "北京" })).items as Json[]
    t.equal(all.length, 4)
    const byFrom = (await ask(who("alice"), { q: "北京", from: who("bob").id })).items as Json[]
    t.same(byFrom.map((i) => keys.get(i.id)).sort(), ["t2", "t20"])
    const ts = Date.parse(all[0].ts)
    const later = (await ask(who("alice"), { q: "北京", after: new Date(ts + 60_000).toISOString() })).items
    t.same(later, [], "nothing after a minute from now")
    const before = (await ask(who("alice"), { q: "北京", before: new Date(ts + 60_000).toISOString() })).items
    t.equal(before.length, 4)
  })

  t.test("cursor pages are stable and cover every hit once", async (t) => {
    const full = (await ask(who("alice"), { q: "京" })).items.map((i: Json) => i.id)
    const paged: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page: Json = await ask(who("alice"), {
        q: "京",
        limit: "2",
        ...(cursor === null ? {} : { cursor }),
      })
      paged.push(...page.items.map((i: Json) => i.id))
      cursor = page.next_cursor
      pages++
    } while (cursor !== null && pages < 10)
    t.same(paged, full, "the same order as one big page")
    t.equal(pages, 3)
    const first: Json = await ask(who("alice"), { q: "京", limit: "2" })
    const other = await f.search(who("alice"), { q: "北京", limit: "2", cursor: first.next_cursor })
    t.equal((await errorOf(other)).code, "SEARCH_CURSOR_INVALID", "a cursor of another search is refused")
    const forged = await f.search(who("alice"), { q: "京", cursor: "not-a-cursor" })
    t.equal((await errorOf(forged)).code, "SEARCH_CURSOR_INVALID")
    // Well-formed cursors for odd places answer quickly and show only the caller's hits.
    const digest = searchDigest(["京", undefined, undefined, undefined, undefined])
    for (const tier of [
      { kind: "window", from: "190001" },
      { kind: "rest", before: "209912" },
    ] as const) {
      const odd: Json = await ask(who("alice"), {
        q: "京",
        cursor: encodeCursor({ tier, position: undefined }, digest),
      })
      t.ok(
        odd.items.every((i: Json) => keys.has(i.id)),
        tier.kind,
      )
    }
    const badMonth = Buffer.from(JSON.stringify([["w", "999999"], null, digest])).toString("base64url")
    t.equal(
      (await errorOf(await f.search(who("alice"), { q: "京", cursor: badMonth }))).code,
      "SEARCH_CURSOR_INVALID",
    )
    // Positions that look right but name no real time or rank: refused, not a failing cast.
    const at = (rank: string, ts: string) =>
      Buffer.from(JSON.stringify([["a"], [rank, ts, "conv", 1], digest])).toString("base64url")
    const fine = await f.search(who("alice"), { q: "京", cursor: at("0.5", "2026-02-28 23:59:59.5+05:30") })
    t.equal(fine.status, 200, "a real position is accepted")
    for (const [rank, ts] of [
      ["0.5", "2026-13-01 00:00:00+00"],
      ["0.5", "2026-02-30 00:00:00+00"],
      ["0.5", "2026-02-28 24:00:00+00"],
      ["0.5", "2026-02-28 00:61:00+00"],
      ["0.5", "2026-02-28 00:00:00+16"],
      ["1e39", "2026-02-28 00:00:00+00"],
    ] as const) {
      const answer = await f.search(who("alice"), { q: "京", cursor: at(rank, ts) })
      t.equal(answer.status, 400, `${rank} ${ts}`)
      t.equal((await errorOf(answer)).code, "SEARCH_CURSOR_INVALID", `${rank} ${ts}`)
    }
  })

  t.test("non-members see nothing of other conversations", async (t) => {
    const mallory = await f.user("mallory")
    for (const q of ["北京", "secret", "python", "deploy", "京"])
      t.same((await ask(mallory, { q })).items, [], `${q}: a user in no conversation finds nothing`)
    const refused = await f.search(who("alice"), { q: "北京", conv: "secret" })
    t.equal(refused.status, 404)
    t.equal(
      (await errorOf(refused)).code,
      "NOT_FOUND",
      "a conversation alice is not in does not exist for her",
    )
  })

  t.test("empty, too long and unauthenticated queries are refused with clear codes", async (t) => {
    for (const q of ["", "   ", "👍🏽 🎉", "!!! ..."]) {
      const res = await f.search(who("alice"), { q })
      t.equal(res.status, 400)
      t.equal((await errorOf(res)).code, "SEARCH_QUERY_EMPTY", JSON.stringify(q))
    }
    const long = await f.search(who("alice"), { q: "北".repeat(257) })
    t.equal(long.status, 400)
    t.equal((await errorOf(long)).code, "SEARCH_QUERY_TOO_LONG")
    const words = await f.search(who("alice"), { q: Array.from({ length: 17 }, (_, i) => `w${i}`).join(" ") })
    t.equal((await errorOf(words)).code, "SEARCH_QUERY_TOO_LONG")
    const bad = await f.search(who("alice"), { q: "x", limit: "1000" })
    t.equal((await errorOf(bad)).code, "INVALID_INPUT")
    const anonymous = await fetch(new URL("?q=x", (await f.search(who("alice"), { q: "x" })).url))
    t.equal(anonymous.status, 401)
  })
})
