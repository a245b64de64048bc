/**
 * The HTTP references in docs/ list every route of their function, and only real routes, so they
 * cannot silently fall behind the code. A route is documented by a table row holding it as code:
 * `` `GET /function/messages?conv=` ``, `` `POST /users/:id/disable` `` or
 * `` `DELETE /function/conversations/{id}/members/{user}` `` all count.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import t from "tap"
import { authRoutes } from "../../functions/auth/routes"
import { routes as conversationsRoutes } from "../../functions/conversations/routes"
import { routes as filesRoutes } from "../../functions/files/routes"
import { routes as messagesRoutes } from "../../functions/messages/routes"
import { routes as searchRoutes } from "../../functions/search/routes"
import { repoRoot } from "../support/bundles"

type Routes = ReadonlyArray<readonly [string, string, ...unknown[]]>

const references: ReadonlyArray<readonly [name: string, doc: string, routes: Routes]> = [
  ["auth", "docs/auth.md", authRoutes],
  ["conversations", "docs/conversations.md", conversationsRoutes],
  ["messages", "docs/messages.md", messagesRoutes],
  ["files", "docs/files.md", filesRoutes],
  ["search", "docs/search.md", searchRoutes],
]

/**
 * One spelling for a route, as the function's router sees it: no `/function/<name>` prefix, no
 * query, every path parameter (`:id`, `{id}`) the same placeholder, no trailing slash.
 */
function normaliseRoute(fn: string, method: string, path: string): string {
  let p = path.split(/[?#]/)[0] ?? ""
  const prefix = `/function/${fn}`
  if (p === prefix || p.startsWith(`${prefix}/`)) p = p.slice(prefix.length)
  const segments = p
    .split("/")
    .filter((s) => s !== "")
    .map((s) => (/^:\w+$/.test(s) || /^\{[^}]+\}$/.test(s) ? "{}" : s))
  return `${method.toUpperCase()} /${segments.join("/")}`
}

/** The routes a document's tables show: code spans `METHOD /path…` in lines that are table rows. */
function documentedRoutes(fn: string, markdown: string): Set<string> {
  const found = new Set<string>()
  for (const line of markdown.split("\n")) {
    if (!line.trimStart().startsWith("|")) continue
    for (const m of line.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/g)) {
      found.add(normaliseRoute(fn, m[1] as string, m[2] as string))
    }
  }
  return found
}

t.test("route spellings normalise to one form", async (t) => {
  t.equal(normaliseRoute("files", "GET", "/function/files/{id}/thumbnail"), "GET /{}/thumbnail")
  t.equal(normaliseRoute("files", "GET", "/:id/thumbnail"), "GET /{}/thumbnail")
  t.equal(normaliseRoute("search", "GET", "/function/search?q=&conv="), "GET /")
  t.equal(normaliseRoute("search", "GET", "/"), "GET /")
  t.equal(normaliseRoute("auth", "GET", "/users?q=&limit="), "GET /users")
  t.equal(
    normaliseRoute("conversations", "DELETE", "/function/conversations/{id}/members/{user id}"),
    "DELETE /{}/members/{}",
  )
  t.equal(normaliseRoute("messages", "POST", "/function/messages/edits/"), "POST /edits")
  // Another function's path is not this function's route.
  t.equal(normaliseRoute("messages", "GET", "/function/conversations"), "GET /function/conversations")
  t.same(
    [
      ...documentedRoutes(
        "files",
        "`GET /function/files/{id}` in prose does not count\n| `POST /function/files/uploads` | x |",
      ),
    ],
    ["POST /uploads"],
  )
})

for (const [fn, doc, routes] of references) {
  t.test(`${doc} lists every route of functions/${fn}/routes.ts, and no other`, async (t) => {
    const documented = documentedRoutes(fn, readFileSync(join(repoRoot, doc), "utf8"))
    const real = new Set(routes.map(([method, path]) => normaliseRoute(fn, method, path)))
    t.ok(real.size > 0, "the function has routes")
    for (const route of real) t.ok(documented.has(route), `${route} is in a table of ${doc}`)
    for (const route of documented) t.ok(real.has(route), `${route} in ${doc} is a route of ${fn}`)
  })
}

t.test("the README and the protocol link the HTTP references", async (t) => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8")
  for (const [, doc] of references) t.match(readme, doc, `README.md links ${doc}`)
  const protocol = readFileSync(join(repoRoot, "docs/protocol.md"), "utf8")
  t.match(protocol, "docs/conversations.md")
  t.match(protocol, "docs/messages.md")
})
