/**
 * The web app's static files (`npm run build` puts them in build/web), served by the local
 * runtime at `/`, plus `/app/config.json`, which tells the page where the edge is. In production
 * the same files are served by whatever serves static files (README, "The web app"), with the
 * same headers.
 */
import { createReadStream } from "node:fs"
import { stat } from "node:fs/promises"
import type { IncomingMessage, ServerResponse } from "node:http"
import { extname, join, resolve, sep } from "node:path"

export type WebAppOptions = {
  /** Folder holding index.html, main.js and styles.css. */
  readonly dir: string
  /** The edge's WebSocket URL as browsers reach it; undefined: the page's host name on edgePort(). */
  readonly edgeUrl: string | undefined
  /** The edge's port (read per request: the stack may pick another one at start). */
  readonly edgePort: () => number
  /** Origin of the S3 store: pages load thumbnails from it and upload to it with presigned URLs. */
  readonly storeOrigin: string
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
}

/** One path segment of a file we serve: no dot files, no "..", no encoded characters. */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/

/** The edge URL for a page whose Host header is `host`. */
export function browserEdgeUrl(o: WebAppOptions, host: string | undefined): string {
  if (o.edgeUrl !== undefined) return o.edgeUrl
  return `ws://${hostName(host)}:${o.edgePort()}/v1/ws`
}

/** The host name of a Host header, or 127.0.0.1 when it is missing or not a plain name. */
function hostName(host: string | undefined): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d+)?$/.exec(host ?? "")
  return m?.[1] ?? "127.0.0.1"
}

/**
 * The page may run only our own script and styles; it talks to the functions (same origin),
 * the edge and the store, and shows images from the store. Nothing else, no inline script.
 */
export function contentSecurityPolicy(edgeUrl: string, storeOrigin: string): string {
  const edge = new URL(edgeUrl)
  const edgeOrigin = `${edge.protocol}//${edge.host}`
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' blob: ${storeOrigin}`,
    `connect-src 'self' ${edgeOrigin} ${storeOrigin}`,
    "font-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join("; ")
}

function securityHeaders(csp: string): Record<string, string> {
  return {
    "content-security-policy": csp,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
  }
}

/**
 * Answers the request if it is one for the web app (GET or HEAD of `/`, `/app/config.json` or a
 * file of `dir`); returns false otherwise, leaving it to the caller.
 */
export async function serveWebApp(
  o: WebAppOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  if (req.method !== "GET" && req.method !== "HEAD") return false
  const path = (req.url ?? "/").split("?")[0] as string
  const edgeUrl = browserEdgeUrl(o, req.headers.host)
  const headers = securityHeaders(contentSecurityPolicy(edgeUrl, o.storeOrigin))
  if (path === "/app/config.json") {
    const body = JSON.stringify({ edge_url: edgeUrl })
    res
      .writeHead(200, {
        ...headers,
        "content-type": CONTENT_TYPES[".json"],
        "cache-control": "no-store",
        "content-length": Buffer.byteLength(body),
      })
      .end(req.method === "HEAD" ? undefined : body)
    return true
  }
  const segments = path === "/" ? ["index.html"] : path.slice(1).split("/")
  const type = CONTENT_TYPES[extname(path === "/" ? "index.html" : path)]
  if (type === undefined || !segments.every((s) => SEGMENT.test(s))) return false
  const root = resolve(o.dir)
  const file = join(root, ...segments)
  // SEGMENT already rules out "..", but the check that matters is where the path ends up.
  if (!file.startsWith(root + sep)) return false
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    // Not one of ours: the caller answers 404.
    if (err.code === "ENOENT" || err.code === "ENOTDIR") return undefined
    throw err
  })
  if (info === undefined || !info.isFile()) return false
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`
  // File names are not content-hashed, so browsers revalidate every time (a cheap 304).
  const cache = { etag, "cache-control": "no-cache" }
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, { ...headers, ...cache }).end()
    return true
  }
  res.writeHead(200, { ...headers, ...cache, "content-type": type, "content-length": info.size })
  if (req.method === "HEAD") {
    res.end()
    return true
  }
  const stream = createReadStream(file)
  stream.once("error", () => res.destroy())
  stream.pipe(res)
  return true
}
