/**
 * Starting chats by name in the browser: suggestions from the user directory while typing (this
 * user left out), picked with the keyboard or the mouse, removed again as chips; one person makes
 * a direct chat, several a group with exactly those members.
 */
import t from "tap"
import {
  callFunction,
  conversation,
  openApp,
  PASSWORD,
  registerUsers,
  screenshot,
  sendText,
  signIn,
  waitForTexts,
  withBrowser,
} from "../support/browser"
import { withStack } from "../support/stack"

t.test("direct chats and groups started by typing names", async (t) => {
  const stack = await withStack(t)
  const browser = await withBrowser(t)
  const users = await registerUsers(stack, ["alice", "bob", "Bobby", "carol", "张伟明"], PASSWORD)
  const id = (name: string) => users.get(name)?.id ?? ""
  const alice = await openApp(browser, stack, "alice")
  await signIn(alice, "alice", PASSWORD)
  const bob = await openApp(browser, stack, "bob")
  await signIn(bob, "bob", PASSWORD)
  const { page } = alice
  const input = page.locator(".new-chat .new-members")
  const suggestions = page.locator(".new-chat .suggestion")
  const chips = page.locator(".new-chat .chip")

  await t.test("a direct chat: type the start of a name, Enter picks the first suggestion", async (t) => {
    await input.pressSequentially("BO")
    // data-query: the text the shown suggestions answer (answers to earlier keystrokes may show first).
    await page.locator('.new-chat .suggestions[data-query="BO"]').waitFor()
    t.same(await suggestions.allTextContents(), ["bob", "Bobby"], "in name order, case folded")
    t.equal(await input.getAttribute("aria-expanded"), "true")
    await screenshot(alice, "30-directory-suggestions")
    await input.press("Enter")
    t.same(await chips.allTextContents(), ["bob×"], "bob is chosen")
    t.equal(await suggestions.count(), 0, "the suggestions close")
    t.equal(await input.inputValue(), "")

    await input.pressSequentially("ali")
    await page
      .locator('.new-chat .suggestions[data-query="ali"] .none', { hasText: "No one found" })
      .waitFor()
    await input.press("Escape")
    await input.fill("")

    await page.locator(".new-chat button[type=submit]").click()
    await page.locator(".chat .chat-header .title", { hasText: "bob" }).waitFor()
    // The form is cleared once the chat is open.
    await chips.first().waitFor({ state: "detached" })
    await sendText(alice, "hi bob, found you by name")
    await conversation(bob, "alice").locator(".unread", { hasText: "1" }).waitFor()
    await conversation(bob, "alice").click()
    await waitForTexts(bob, ["hi bob, found you by name"])
  })

  await t.test(
    "a group: picked by arrows and clicks, one removed again; exactly those members",
    async (t) => {
      await input.pressSequentially("bo")
      await page.locator('.new-chat .suggestions[data-query="bo"]').waitFor()
      await input.press("ArrowDown")
      t.equal(
        await page.locator('.new-chat .suggestion[aria-selected="true"]').textContent(),
        "Bobby",
        "the arrow moves the choice",
      )
      await input.press("Enter")
      await input.pressSequentially("张")
      await page.locator(".new-chat .suggestion", { hasText: "张伟明" }).click()
      await input.pressSequentially("car")
      await page.locator(".new-chat .suggestion", { hasText: "carol" }).click()
      await input.pressSequentially("bob")
      await page.locator('.new-chat .suggestions[data-query="bob"]').waitFor()
      t.same(await suggestions.allTextContents(), ["bob"], "someone already chosen is not suggested again")
      await input.press("Enter")
      t.same(await chips.allTextContents(), ["Bobby×", "张伟明×", "carol×", "bob×"])
      await page.locator(".new-chat .chip", { hasText: "carol" }).locator(".remove").click()
      t.same(await chips.allTextContents(), ["Bobby×", "张伟明×", "bob×"], "carol is removed")
      await page.locator(".new-chat .new-title").fill("Bees 蜜蜂")
      await screenshot(alice, "31-directory-group-chosen")
      await page.locator(".new-chat button[type=submit]").click()
      await page.locator(".chat .chat-header .title", { hasText: "Bees 蜜蜂" }).waitFor()
      await page.locator(".chat .chat-header .subtitle", { hasText: "4 members" }).waitFor()

      const conv = await page.locator("section.chat").getAttribute("data-conv")
      const members = await callFunction(
        stack,
        "GET",
        `conversations/${conv}/members`,
        undefined,
        users.get("alice")?.token,
      )
      t.same(
        new Set((members.items as Array<{ id: string }>).map((m) => m.id)),
        new Set([id("alice"), id("Bobby"), id("张伟明"), id("bob")]),
        "the group has exactly the chosen people and its creator",
      )
      await sendText(alice, "welcome, bees")
      await conversation(bob, "Bees 蜜蜂").click()
      await waitForTexts(bob, ["welcome, bees"])
      await screenshot(bob, "32-directory-group-bob")
      t.same(alice.dialogs, [], "no dialog opened")
    },
  )
})
