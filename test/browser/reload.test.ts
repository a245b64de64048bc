/**
 * What a page reload must keep: messages sent while the page was away appear once, with the
 * right unread counts; receipts ("Read", "Read by N") come from the stored read positions, not
 * only from live read events; presence is asked on every new connection; an outbox entry written
 * while the edge was down survives a reload and is stored once; and a logout stays a logout.
 */
import t from "tap"
import WebSocket from "ws"
import { CoveClient, type WebSocketConstructor } from "../../sdk/src/index"
import {
  callFunction,
  conversation,
  messageTexts,
  openApp,
  PASSWORD,
  registerUsers,
  screenshot,
  sendText,
  signIn,
  type UserPage,
  waitForTexts,
  withBrowser,
} from "../support/browser"
import { eventually } from "../support/servers"
import { withStack } from "../support/stack"

/** The users each of the page's sockets asked `who` about, one list per socket in opening order. */
function whoAsked(user: UserPage): string[][][] {
  const sockets: string[][][] = []
  user.page.on("websocket", (ws) => {
    const asked: string[][] = []
    sockets.push(asked)
    ws.on("framesent", (f) => {
      const frame = JSON.parse(String(f.payload)) as { type?: string; users?: string[] }
      if (frame.type === "who" && frame.users !== undefined) asked.push(frame.users)
    })
  })
  return sockets
}

/** The page's localStorage, read through the browser context (the tests are not compiled for the DOM). */
async function stored(user: UserPage): Promise<Map<string, string>> {
  const state = await user.context.storageState()
  return new Map(state.origins.flatMap((o) => o.localStorage.map((e) => [e.name, e.value] as const)))
}

/** Waits until the page's latest socket has asked `who` about `user`. */
function askedOnLatest(sockets: string[][][], user: string, what: string): Promise<true> {
  return eventually(
    async () => (sockets.at(-1)?.some((users) => users.includes(user)) ? true : undefined),
    what,
  )
}

const text = (s: string) => ({ kind: "text" as const, text: s })

t.test("reloads: resume, unread counts, receipts, presence, the outbox, logout", async (t) => {
  const stack = await withStack(t)
  const browser = await withBrowser(t)
  const users = await registerUsers(stack, ["alice", "bob", "carol"], PASSWORD)
  const [aliceUser, bobUser] = [users.get("alice"), users.get("bob")]
  if (aliceUser === undefined || bobUser === undefined) throw new Error("users missing")
  await callFunction(
    stack,
    "POST",
    "conversations",
    { kind: "direct", members: [bobUser.id] },
    aliceUser.token,
  )
  const trio = (
    await callFunction(
      stack,
      "POST",
      "conversations",
      { kind: "group", title: "Trio", members: [bobUser.id, users.get("carol")?.id] },
      aliceUser.token,
    )
  ).id as string
  // Carol is the SDK on Node.js: a third member who writes and reads without a page.
  const carol = await CoveClient.login({
    baseUrl: stack.gatewayUrl,
    edgeUrl: stack.edgeUrl,
    WebSocket: WebSocket as WebSocketConstructor,
    username: "carol",
    password: PASSWORD,
  })
  t.teardown(() => carol.close())
  await carol.connect()

  const alice = await openApp(browser, stack, "alice")
  const bob = await openApp(browser, stack, "bob")
  const aliceAsked = whoAsked(alice)
  const bobAsked = whoAsked(bob)
  await signIn(alice, "alice", PASSWORD)
  await signIn(bob, "bob", PASSWORD)
  const away = (u: UserPage) => u.page.goto("about:blank")
  const back = async (u: UserPage) => {
    await u.page.goto(`${stack.gatewayUrl}/`)
    await u.page.locator('.connection[data-state="open"]').waitFor()
  }
  const unread = (u: UserPage, title: string) => conversation(u, title).locator(".unread")
  const direct = ["a1"]

  await t.test(
    "messages sent while the page was away appear once, with the right unread counts",
    async (t) => {
      await conversation(alice, "bob").click()
      await sendText(alice, "a1")
      await conversation(bob, "alice").click()
      await waitForTexts(bob, direct)
      await alice.page.locator(".chat .message.mine .receipt", { hasText: "Read" }).waitFor()

      await away(alice)
      for (const s of ["b1", "b2", "b3"]) {
        await sendText(bob, s)
        direct.push(s)
      }
      await waitForTexts(bob, direct)
      await bob.page.locator(".chat .message.pending").waitFor({ state: "detached" })
      for (const s of ["c1", "c2"]) carol.send(trio, text(s))
      await eventually(async () => (carol.outbox().length === 0 ? true : undefined), "carol's sends stored")

      await back(alice)
      await unread(alice, "bob").filter({ hasText: "3" }).waitFor()
      await unread(alice, "Trio").filter({ hasText: "2" }).waitFor()
      await conversation(alice, "bob").locator(".last", { hasText: "bob: b3" }).waitFor()
      await screenshot(alice, "40-reload-unread")

      // Live again: one more message counts once.
      await sendText(bob, "b4")
      direct.push("b4")
      await unread(alice, "bob").filter({ hasText: "4" }).waitFor()
      t.equal(await unread(alice, "bob").textContent(), "4")
      await conversation(alice, "bob").click()
      await waitForTexts(alice, direct)
      t.equal(await unread(alice, "bob").count(), 0, "opening it clears the count")

      await alice.page.reload()
      await alice.page.locator('.connection[data-state="open"]').waitFor()
      t.equal(await unread(alice, "bob").count(), 0, "read before the reload: nothing unread after it")
      t.equal(await unread(alice, "Trio").textContent(), "2", "the group's count is kept")
      await conversation(alice, "bob").click()
      await waitForTexts(alice, direct)
      t.same(await messageTexts(alice), direct, "every message once, in order")
    },
  )

  await t.test("receipts after a reload come from the stored read positions", async (t) => {
    // Bob read a1 before alice's page reloaded twice: no live read event has reached this page.
    await alice.page
      .locator(".chat .message.mine", { hasText: "a1" })
      .locator(".receipt", { hasText: "Read" })
      .waitFor()

    await conversation(alice, "Trio").click()
    await waitForTexts(alice, ["c1", "c2"])
    await sendText(alice, "a-group")
    await alice.page.locator(".chat .message.pending").waitFor({ state: "detached" })
    await away(alice)
    // Both read it while alice's page is away, so only the stored positions can tell her.
    await conversation(bob, "Trio").click()
    await waitForTexts(bob, ["c1", "c2", "a-group"])
    const seq = await eventually(async () => {
      const s = carol.lastSeq(trio)
      return s !== undefined && s >= 3 ? s : undefined
    }, "carol to have alice's message")
    carol.markRead(trio, seq)
    await eventually(async () => {
      const { items } = await callFunction(
        stack,
        "GET",
        `conversations/${trio}/members`,
        undefined,
        aliceUser.token,
      )
      const read = (items as Array<{ id: string; read_seq: number }>).filter((m) => m.id !== aliceUser.id)
      return read.length === 2 && read.every((m) => m.read_seq >= seq) ? true : undefined
    }, "bob's and carol's reads stored")

    await back(alice)
    await conversation(alice, "Trio").click()
    await waitForTexts(alice, ["c1", "c2", "a-group"])
    const receipt = alice.page.locator(".chat .message.mine", { hasText: "a-group" }).locator(".receipt")
    await receipt.filter({ hasText: "Read by 2" }).waitFor()
    t.equal(await receipt.textContent(), "Read by 2")
    await screenshot(alice, "41-reload-read-by-2")
  })

  await t.test("presence is asked when the connection opens: bob shows online after the reload", async () => {
    await askedOnLatest(aliceAsked, bobUser.id, "alice's new socket to ask who about bob")
    await conversation(alice, "bob").locator('.presence-dot[data-online="true"]').waitFor()
    await conversation(alice, "bob").click()
    await alice.page.locator(".chat .chat-header .subtitle", { hasText: "online" }).waitFor()
  })

  await t.test("an outbox entry written while the edge is down survives a reload; stored once", async (t) => {
    const late = "written while the edge was down 断线"
    const pending = alice.page.locator(".chat .message.pending", { hasText: late })
    const socketsBefore = { alice: aliceAsked.length, bob: bobAsked.length }
    await conversation(bob, "alice").click()
    await waitForTexts(bob, direct)
    await stack.restartEdge({
      whileDown: async () => {
        await alice.page.locator('.connection:not([data-state="open"])').waitFor()
        await sendText(alice, late)
        await pending.waitFor()
        await alice.page.reload()
        await conversation(alice, "bob").click()
        await pending.waitFor()
        t.not(await alice.page.locator(".connection").getAttribute("data-state"), "open", "still no edge")
        await screenshot(alice, "42-reload-pending-without-edge")
      },
    })
    direct.push(late)
    await waitForTexts(alice, direct, 60_000)
    await waitForTexts(bob, direct, 60_000)
    await pending.waitFor({ state: "detached" })
    t.same(await messageTexts(alice), direct, "alice: once, in order")
    t.same(await messageTexts(bob), direct, "bob: once, in order")
    const outboxes = [...(await stored(alice))].filter(([k]) => k.startsWith("cove:outbox:"))
    t.same(
      outboxes.map(([, v]) => v),
      ["[]"],
      "the outbox kept in localStorage is empty",
    )

    // Both pages reconnected, and each new socket asked who about the other.
    t.ok(aliceAsked.length > socketsBefore.alice && bobAsked.length > socketsBefore.bob, "new sockets")
    await askedOnLatest(aliceAsked, bobUser.id, "alice's socket after the restart to ask who about bob")
    await askedOnLatest(bobAsked, aliceUser.id, "bob's socket after the restart to ask who about alice")
    await alice.page.locator(".chat .chat-header .subtitle", { hasText: "online" }).waitFor()
    await screenshot(alice, "43-reload-outbox-stored-alice")
    await screenshot(bob, "44-reload-outbox-stored-bob")
  })

  await t.test(
    "logout returns to the login form, ends the login, and a reload stays logged out",
    async (t) => {
      const tokens = JSON.parse((await stored(alice)).get("cove:tokens") ?? "{}") as {
        refresh_token?: string
      }
      t.ok(tokens.refresh_token, "signed in")
      await alice.page.locator(".sidebar .logout").click()
      await alice.page.locator("form.login input[name=username]").waitFor()
      t.equal(await alice.page.locator(".sidebar").count(), 0)
      const kept = async () => {
        const all = await stored(alice)
        return [all.get("cove:tokens"), all.get("cove.user")]
      }
      t.same(await kept(), [undefined, undefined], "nothing of the login is kept")
      const refused = await fetch(`${stack.gatewayUrl}/function/auth/refresh`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: tokens.refresh_token }),
      })
      t.equal(refused.status, 401, "the refresh token no longer works")

      await alice.page.reload()
      await alice.page.locator("form.login input[name=username]").waitFor()
      await alice.page.waitForLoadState("networkidle")
      t.equal(await alice.page.locator(".sidebar").count(), 0, "still logged out after the reload")
      t.same(await kept(), [undefined, undefined])
      await screenshot(alice, "45-reload-after-logout")
      for (const u of [alice, bob]) {
        t.same(u.dialogs, [], `no dialog opened for ${u.name}`)
        t.same(
          u.consoleErrors.filter((e) => /Content Security Policy/.test(e)),
          [],
          `no CSP violation for ${u.name}`,
        )
      }
    },
  )
})
