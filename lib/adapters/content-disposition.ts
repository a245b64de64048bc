/**
 * `Content-Disposition: attachment` for a user-given file name (RFC 6266): an ASCII `filename`
 * fallback for old clients, and the exact name as UTF-8 in `filename*` (RFC 5987 / RFC 8187).
 */

/** Characters kept in the ASCII fallback: printable ASCII except the quoting and path ones. */
const FALLBACK_UNSAFE = /[^\x20-\x7e]|["\\/%;]/g

/** attr-char of RFC 5987; everything else is percent-encoded from UTF-8. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+.^_`|~-]/

/** Strips what must never reach a saved file name: path parts and control characters. */
export function safeFileName(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? ""
  const cleaned = base.replace(/[\p{Cc}\p{Cf}]/gu, "").trim()
  return cleaned === "" || cleaned === "." || cleaned === ".." ? "download" : cleaned
}

export function contentDisposition(name: string): string {
  const safe = safeFileName(name)
  const fallback = safe.replace(FALLBACK_UNSAFE, "_")
  let encoded = ""
  for (const ch of safe) {
    if (ATTR_CHAR.test(ch)) encoded += ch
    else
      for (const byte of Buffer.from(ch, "utf8"))
        encoded += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`
}
