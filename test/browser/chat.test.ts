/**
 * The web app in Debian's chromium against a real local stack: two users chatting in two browser
 * contexts (unread counts, IME, typing, receipts, reply, edit, reactions, recall), a group of
 * three, a search in Chinese, and XSS payloads that must stay text. Screenshots go to
 * test-artifacts/browser/.
 */
import t from "tap"
import {
  conversation,
  openApp,
  PASSWORD,
  screenshot,
  sendText,
  signIn,
  type UserPage,
  waitForTexts,
  withBrowser,
} from "../support/browser"
import { type Json, jsonOf } from "../support/http"
import { withStack } from "../support/stack"

t.test("two users, a group of three, search and XSS in the browser", async (t) => {
  const stack = await withStack(t)
  const browser = await withBrowser(t)
  const call = async (method: string, path: string, body: unknown, token?: string): Promise<Json> =>
    jsonOf(
      await fetch(`${stack.gatewayUrl}/function/${path}`, {
        method,
        headers: {
          "content-type": "application/json",
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body: JSON.stringify(body),
      }),
    )

  // The first account registers through the page (it is always open); it is the admin.
  const alice = await openApp(browser, stack, "alice")
  await screenshot(alice, "01-login")
  await signIn(alice, "alice", PASSWORD, "register")
  const admin = await call("POST", "auth/login", { username: "alice", password: PASSWORD })
  const register = async (username: string) =>
    (await call("POST", "auth/register", { username, password: PASSWORD }, admin.access_token)).user
      .id as string
  const bobId = await register("bob")
  const carolId = await register("carol")
  const bob = await openApp(browser, stack, "bob")
  await signIn(bob, "bob", PASSWORD)

  await t.test(
    "a direct chat: started by id, unread count and last message, exactly once each",
    async (t) => {
      await alice.page.locator(".new-members").fill(bobId)
      await alice.page.locator(".new-chat button[type=submit]").click()
      await alice.page.locator(".chat .chat-header .title", { hasText: "bob" }).waitFor()
      await sendText(alice, "Hello Bob 你好")
      await sendText(alice, "second line")
      await waitForTexts(alice, ["Hello Bob 你好", "second line"])

      const entry = conversation(bob, "alice")
      await entry.locator(".unread", { hasText: "2" }).waitFor()
      await entry.locator(".last", { hasText: "alice: second line" }).waitFor()
      await screenshot(bob, "02-unread")
      await entry.click()
      await waitForTexts(bob, ["Hello Bob 你好", "second line"])
      t.equal(await entry.locator(".unread").count(), 0, "opening it clears the count")
      t.equal(await bob.page.locator(".chat .message.mine").count(), 0, "both are alice's")
      // Alice sees that bob read them.
      await alice.page.locator(".chat .message.mine .receipt", { hasText: "Read" }).last().waitFor()
    },
  )

  await t.test("Enter during an IME composition does not send; Enter after it does", async (t) => {
    const input = bob.page.locator(".composer .input")
    // What a pinyin IME does: compositionstart, then Enter (keyCode 229, isComposing) to confirm
    // the candidate, then compositionend. Only a later Enter sends.
    await input.fill("你好")
    await input.dispatchEvent("compositionstart", { data: "" })
    await input.dispatchEvent("keydown", { key: "Enter", code: "Enter", isComposing: true })
    await input.dispatchEvent("compositionend", { data: "你好" })
    t.equal(await input.inputValue(), "你好", "the composed text is still in the box")
    await input.dispatchEvent("compositionstart", { data: "" })
    await input.dispatchEvent("keydown", { key: "Enter", code: "Enter", isComposing: false, keyCode: 229 })
    await input.dispatchEvent("compositionend", { data: "" })
    t.equal(await input.inputValue(), "你好", "nor does keyCode 229 (Safari's order of events)")
    await input.fill("你好，Alice")
    await input.press("Enter")
    // Exactly these texts: a message sent by a composing Enter would show up here.
    await waitForTexts(alice, ["Hello Bob 你好", "second line", "你好，Alice"])
    await waitForTexts(bob, ["Hello Bob 你好", "second line", "你好，Alice"])
    t.equal(await input.inputValue(), "", "the box is emptied by sending")
  })

  await t.test("typing, presence, reply, edit, reactions, recall", async (t) => {
    await bob.page.locator(".composer .input").pressSequentially("typing…")
    await alice.page.locator(".chat .typing", { hasText: "bob is typing" }).waitFor()
    t.equal(await alice.page.locator(".chat .subtitle").textContent(), "online", "bob is online")
    await bob.page.locator(".composer .input").fill("")

    const first = alice.page.locator(".chat .message", { hasText: "Hello Bob 你好" })
    await first.hover()
    await first.locator(".actions .reply").click()
    await sendText(alice, "replying to myself")
    const reply = bob.page.locator(".chat .message", { hasText: "replying to myself" })
    await reply.locator(".quote", { hasText: "alice: Hello Bob 你好" }).waitFor()

    const second = alice.page.locator(".chat .message", { hasText: "second line" })
    await second.hover()
    await second.locator(".actions .edit").click()
    await alice.page.locator(".composer .input").fill("second line (edited)")
    await alice.page.locator(".composer .input").press("Enter")
    await bob.page.locator(".chat .message .edited").waitFor()
    await waitForTexts(bob, ["Hello Bob 你好", "second line (edited)", "你好，Alice", "replying to myself"])

    const bobsView = bob.page.locator(".chat .message", { hasText: "Hello Bob 你好" }).first()
    await bobsView.hover()
    await bobsView.locator(".actions .react", { hasText: "👍" }).click()
    await alice.page
      .locator(".chat .message", { hasText: "Hello Bob 你好" })
      .first()
      .locator(".reaction", { hasText: "👍 1" })
      .waitFor()

    const mistake = alice.page.locator(".chat .message", { hasText: "replying to myself" })
    await mistake.hover()
    await mistake.locator(".actions .recall").click()
    await bob.page.locator(".chat .message .recalled").waitFor()
    await waitForTexts(bob, ["Hello Bob 你好", "second line (edited)", "你好，Alice"])
    await screenshot(alice, "03-direct-chat-alice")
    await screenshot(bob, "04-direct-chat-bob")
  })

  let carol: UserPage
  await t.test("a group of three: everyone sees every message once, in order, with its sender", async (t) => {
    carol = await openApp(browser, stack, "carol")
    await signIn(carol, "carol", PASSWORD)
    await alice.page.locator(".new-members").fill(`${bobId}, ${carolId}`)
    await alice.page.locator(".new-title").fill("团队 <b>Team</b>")
    await alice.page.locator(".new-chat button[type=submit]").click()
    await alice.page.locator(".chat .chat-header .title", { hasText: "团队 <b>Team</b>" }).waitFor()
    await sendText(alice, "大家好")
    for (const u of [bob, carol]) {
      await conversation(u, "团队 <b>Team</b>").click()
      await waitForTexts(u, ["大家好"])
    }
    await sendText(bob, "bob here")
    await waitForTexts(carol, ["大家好", "bob here"])
    await sendText(carol, "carol here")
    const all = ["大家好", "bob here", "carol here"]
    for (const u of [alice, bob, carol]) await waitForTexts(u, all)
    const senders = await carol.page
      .locator(".chat .message")
      .evaluateAll((nodes) => nodes.map((n) => n.querySelector(".sender")?.textContent ?? "me"))
    t.same(senders, ["alice", "bob", "me"])
    await alice.page.locator(".chat .message.mine .receipt", { hasText: "Read by 2" }).first().waitFor()
    await screenshot(carol, "05-group-carol")
  })

  await t.test("search in Chinese shows highlighted results and opens the message", async (t) => {
    await bob.page.locator(".search-input").fill("你好")
    await bob.page.locator(".search-form button").click()
    const results = bob.page.locator(".search-result")
    await results.first().waitFor()
    const marks = await bob.page.locator(".search-result mark").allTextContents()
    t.ok(marks.length >= 2, "both messages are found")
    t.ok(
      marks.every((m) => m === "你好"),
      "the match is marked",
    )
    await screenshot(bob, "06-search")
    await bob.page
      .locator(".search-result", { has: bob.page.locator(".snippet", { hasText: "，Alice" }) })
      .click()
    await bob.page.locator(".chat .message.highlight", { hasText: "你好，Alice" }).waitFor()
  })

  await t.test("XSS attempts in text render as text and run nothing", async (t) => {
    const payloads = [
      "<img src=x onerror=\"alert('xss-img')\">",
      "<script>alert('xss-script')</script>",
      '"><svg onload=alert(1)>',
    ]
    for (const p of payloads) await sendText(alice, p)
    await conversation(bob, "团队 <b>Team</b>").click()
    await waitForTexts(bob, ["大家好", "bob here", "carol here", ...payloads])
    t.equal(
      await bob.page.locator(".chat .message .text img, .chat .message .text script, .chat svg").count(),
      0,
    )
    await bob.page.locator(".search-input").fill("xss-img")
    await bob.page.locator(".search-form button").click()
    await bob.page.locator(".search-result", { hasText: "onerror" }).waitFor()
    t.equal(await bob.page.locator(".search-result img").count(), 0, "a snippet with a tag stays text")
    await screenshot(bob, "07-xss-as-text")
    for (const u of [alice, bob, carol]) {
      t.same(u.dialogs, [], `no dialog opened for ${u.name}`)
      t.same(
        u.consoleErrors.filter((e) => /Content Security Policy|Refused/.test(e)),
        [],
        `no CSP violation for ${u.name}`,
      )
      const allowed = new Set([
        stack.gatewayUrl,
        new URL(stack.s3Endpoint).origin,
        new URL(stack.edgeUrl.replace("ws:", "http:")).origin,
      ])
      t.same(
        [...u.origins].filter((o) => !allowed.has(o) && !o.startsWith("ws://127.0.0.1")),
        [],
        `${u.name} loaded nothing from outside`,
      )
    }
  })
})
