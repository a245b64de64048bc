/**
 * The edge restarted (SIGTERM, as in a deploy) in the middle of a conversation: the pages
 * reconnect on their own, and every message shows exactly once, in order, on both screens.
 */
import t from "tap"
import {
  directChatPages,
  messageTexts,
  screenshot,
  sendText,
  type UserPage,
  waitForTexts,
} from "../support/browser"
import { withStack } from "../support/stack"

t.test("no message lost or duplicated on screen across an edge restart", async (t) => {
  const stack = await withStack(t)
  const { a, b } = await directChatPages(t, stack)

  const expected: string[] = []
  const say = async (who: UserPage, text: string) => {
    await sendText(who, text)
    expected.push(text)
  }
  for (let i = 1; i <= 3; i++) await say(i % 2 === 0 ? b : a, `before ${i}`)
  await waitForTexts(a, expected)
  await waitForTexts(b, expected)

  // Restart while alice keeps typing: some sends meet a closing socket, some no socket at all.
  const restarted = stack.restartEdge()
  for (let i = 1; i <= 5; i++) await say(a, `during ${i} 重启`)
  await restarted
  await a.page.locator('.connection[data-state="open"]').waitFor()
  await b.page.locator('.connection[data-state="open"]').waitFor()
  for (let i = 1; i <= 3; i++) await say(i % 2 === 0 ? a : b, `after ${i}`)

  await waitForTexts(a, expected, 40_000)
  await waitForTexts(b, expected, 40_000)
  t.same(await messageTexts(a), expected, "alice: every message once, in order")
  t.same(await messageTexts(b), expected, "bob: every message once, in order")
  t.equal(await a.page.locator(".chat .message.pending").count(), 0, "nothing left pending")
  await screenshot(a, "20-after-edge-restart-alice")
  await screenshot(b, "21-after-edge-restart-bob")
})
