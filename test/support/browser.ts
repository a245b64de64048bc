/**
 * For browser tests: Debian's chromium driven by playwright-core (no browser download), pages
 * of the web app served by a real local stack, and screenshots in test-artifacts/browser/.
 * Every page records dialogs (an XSS payload that ran would open one), console errors (CSP
 * violations are reported there) and the origins it requested (nothing may come from outside).
 */
import { mkdir } from "node:fs/promises"
import { join } from "node:path"
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core"
import type { Test } from "tap"
import type { RunningStack } from "../../infra/local/stack"
import { repoRoot } from "./bundles"
import { type Json, jsonOf } from "./http"
import { eventually } from "./servers"

/** Debian's `chromium` package (.ci/run installs it); playwright's own download cannot work here. */
export const CHROMIUM = "/usr/bin/chromium"
export const ARTIFACTS = join(repoRoot, "test-artifacts", "browser")

/** One headless chromium per test file, closed in teardown. */
export async function withBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The machine has no network beyond loopback: nothing may try to phone home.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  })
  t.teardown(() => browser.close())
  return browser
}

export type UserPage = {
  readonly name: string
  readonly context: BrowserContext
  readonly page: Page
  /** Messages of dialogs that opened (each is dismissed). */
  readonly dialogs: string[]
  /** Console errors, CSP violations among them. */
  readonly consoleErrors: string[]
  /** Origins the page requested. */
  readonly origins: Set<string>
}

/** A fresh browser context (its own localStorage: one user) on the stack's web app. */
export async function openApp(browser: Browser, stack: RunningStack, name: string): Promise<UserPage> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 760 } })
  const page = await context.newPage()
  page.setDefaultTimeout(20_000)
  const user: UserPage = { name, context, page, dialogs: [], consoleErrors: [], origins: new Set() }
  page.on("dialog", (d) => {
    user.dialogs.push(d.message())
    void d.dismiss()
  })
  page.on("console", (m) => {
    if (m.type() === "error") user.consoleErrors.push(m.text())
  })
  page.on("pageerror", (err) => user.consoleErrors.push(String(err)))
  page.on("request", (r) => {
    const url = new URL(r.url())
    if (url.protocol !== "data:" && url.protocol !== "blob:") user.origins.add(url.origin)
  })
  await page.goto(`${stack.gatewayUrl}/`)
  return user
}

/** Logs in (or registers) through the form and waits for the app. */
export async function signIn(
  user: UserPage,
  username: string,
  password: string,
  how: "login" | "register" = "login",
): Promise<void> {
  const { page } = user
  await page.locator("input[name=username]").fill(username)
  await page.locator("input[name=password]").fill(password)
  await page.locator(how === "login" ? ".login-button" : ".register-button").click()
  await page.locator(".sidebar .me").waitFor()
  await page.locator('.connection[data-state="open"]').waitFor()
}

export async function screenshot(user: UserPage, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await user.page.screenshot({ path })
  return path
}

/** The conversation's entry in the sidebar. */
export function conversation(user: UserPage, title: string): Locator {
  return user.page.locator(".conversation", { has: user.page.locator(".title", { hasText: title }) })
}

/** Texts of the open conversation's messages, in screen order. */
export function messageTexts(user: UserPage): Promise<string[]> {
  return user.page.locator(".chat .message .text").allTextContents()
}

/** Waits until the open conversation shows exactly these texts (in order); reports what it shows. */
export async function waitForTexts(
  user: UserPage,
  expected: readonly string[],
  deadlineMs = 20_000,
): Promise<void> {
  let last: string[] = []
  try {
    await eventually(
      async () => {
        last = await messageTexts(user)
        return JSON.stringify(last) === JSON.stringify(expected) ? true : undefined
      },
      `${user.name} to show ${expected.length} messages`,
      deadlineMs,
    )
  } catch (err) {
    throw new Error(`${(err as Error).message}; shown: ${JSON.stringify(last)}`)
  }
}

/** Sends a text with the composer and Enter. */
export async function sendText(user: UserPage, text: string): Promise<void> {
  const input = user.page.locator(".composer .input")
  await input.fill(text)
  await input.press("Enter")
}

/** Calls a function over HTTP as the page would, with an optional bearer token. */
export async function callFunction(
  stack: RunningStack,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Json> {
  return jsonOf(
    await fetch(`${stack.gatewayUrl}/function/${path}`, {
      method,
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  )
}

/** Registers users over HTTP (the first is the admin who registers the others); returns their ids and tokens. */
export async function registerUsers(
  stack: RunningStack,
  names: readonly string[],
  password: string,
): Promise<Map<string, { id: string; token: string }>> {
  const users = new Map<string, { id: string; token: string }>()
  let admin: string | undefined
  for (const name of names) {
    const answer = await callFunction(stack, "POST", "auth/register", { username: name, password }, admin)
    admin ??= answer.access_token as string
    users.set(name, { id: answer.user.id as string, token: answer.access_token as string })
  }
  return users
}

/** The password every browser test user gets. */
export const PASSWORD = "correct horse battery"

/**
 * The common start of a two-person browser test: a stack, a browser, alice and bob with a direct
 * conversation, each signed in on a page of their own with that conversation open.
 */
export async function directChatPages(t: Test, stack: RunningStack) {
  const browser = await withBrowser(t)
  const users = await registerUsers(stack, ["alice", "bob"], PASSWORD)
  const alice = users.get("alice")
  const bob = users.get("bob")
  if (alice === undefined || bob === undefined) throw new Error("users missing")
  await callFunction(stack, "POST", "conversations", { kind: "direct", members: [bob.id] }, alice.token)
  const pages: UserPage[] = []
  for (const name of ["alice", "bob"]) {
    const page = await openApp(browser, stack, name)
    await signIn(page, name, PASSWORD)
    await conversation(page, name === "alice" ? "bob" : "alice").click()
    await page.page.locator(".chat .composer").waitFor()
    pages.push(page)
  }
  const [a, b] = pages as [UserPage, UserPage]
  return { browser, alice, bob, a, b }
}
