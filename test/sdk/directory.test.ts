/**
 * client.users.find, the user directory (docs/auth.md), on the local stack: found by the start of
 * a name whatever its case or width, in name order, limited, and refused without a valid query
 * or login.
 */
import t from "tap"
import { HttpError } from "../../sdk/src/index"
import { world } from "./world"

t.test("the user directory through the SDK", async (t) => {
  const w = await world(t)
  const anna = await w.user("Anna")
  const annabel = await w.user("annabel")
  await w.user("Ánh")
  const zhang = await w.user("张伟明")
  const zhangSan = await w.user("张三丰")
  const names = (users: ReadonlyArray<{ username: string }>) => users.map((u) => u.username)

  await t.test(
    "by the start of a name, folded like usernames, in name order, the caller included",
    async (t) => {
      const found = await anna.users.find("an")
      t.same(found, [anna.user, annabel.user], "ids and names as registered; Ánh does not start with an")
      t.same(names(await anna.users.find("ANNA")), ["Anna", "annabel"], "case does not matter")
      t.same(names(await anna.users.find("ＡＮ")), ["Anna", "annabel"], "nor does width (NFKC)")
      t.same(names(await anna.users.find("ánh")), ["Ánh"])
      t.same(new Set(await anna.users.find("张")), new Set([zhang.user, zhangSan.user]), "any script")
      t.same(await anna.users.find("nobody"), [])
    },
  )

  await t.test("limit", async (t) => {
    t.same(names(await anna.users.find("an", { limit: 1 })), ["Anna"])
    t.equal((await anna.users.find("an", { limit: 50 })).length, 2)
  })

  await t.test("errors: an empty query or a limit out of range, and no login", async (t) => {
    for (const [q, limit] of [
      ["", undefined],
      ["an", 0],
      ["an", 51],
      ["x".repeat(65), undefined],
    ] as const) {
      const err = await anna.users.find(q, limit === undefined ? {} : { limit }).catch((e: unknown) => e)
      t.ok(err instanceof HttpError, `q=${q.slice(0, 5)} limit=${limit}`)
      t.match(err, { status: 400, code: "INVALID_INPUT" })
    }
    await annabel.auth.logout()
    const err = await annabel.users.find("an").catch((e: unknown) => e)
    t.ok(err instanceof HttpError)
    t.match(err, { status: 401 })
  })
})
