/** One message bubble: sender, reply quote, text or file, edits, recalls, reactions, receipts. */
import { el, formatBytes, formatTime, on, safeUrl } from "./dom"
import { type ChatMessage, preview } from "./state"

export type FileInfo = {
  readonly url: string
  readonly name: string
  readonly size: number
  readonly content_type: string
  readonly thumbnail?: { readonly url: string; readonly width: number; readonly height: number }
}

export type MessageContext = {
  readonly me: string
  readonly group: boolean
  nameOf(user: string): string
  /** The message answered, if loaded. */
  find(id: string): ChatMessage | undefined
  /** Members other than the sender who have read up to this seq. */
  readers(seq: number): number
  reply(m: ChatMessage): void
  edit(m: ChatMessage): void
  recall(m: ChatMessage): void
  react(m: ChatMessage, emoji: string): void
  retry(m: ChatMessage): void
  discard(m: ChatMessage): void
  /** The file's name, size and URLs (fresh presigned URLs on every call). */
  file(fileId: string, fresh?: boolean): Promise<FileInfo>
}

export const QUICK_REACTIONS = ["👍", "❤️", "😂"] as const

export function renderMessage(m: ChatMessage, ctx: MessageContext): HTMLElement {
  const mine = m.from === ctx.me
  const classes = [
    "message",
    mine ? "mine" : "",
    m.outbox === undefined ? "" : "pending",
    m.outbox === "failed" ? "failed" : "",
  ]
  const node = el("div", {
    class: classes.filter(Boolean).join(" "),
    "data-msg-id": m.id,
    "data-seq": m.seq === undefined ? undefined : String(m.seq),
    "data-from": m.from,
  })
  if (ctx.group && !mine) node.append(el("div", { class: "sender" }, ctx.nameOf(m.from)))
  if (m.replyTo !== undefined) {
    const target = ctx.find(m.replyTo)
    node.append(
      el(
        "div",
        { class: "quote" },
        target === undefined
          ? "Reply to an earlier message"
          : `${ctx.nameOf(target.from)}: ${preview(target)}`,
      ),
    )
  }
  if (m.recalled || m.body === null) {
    node.append(el("div", { class: "recalled" }, "This message was recalled"))
  } else if (m.body.kind === "text") {
    node.append(el("div", { class: "text" }, m.body.text))
  } else {
    node.append(renderFile(m.body.file_id, m.body.caption, ctx))
  }
  node.append(renderMeta(m, ctx, mine))
  if (m.reactions.size > 0) {
    const chips = [...m.reactions].map(([emoji, n]) => {
      const chip = el(
        "button",
        { class: "reaction", "data-emoji": emoji, "aria-pressed": String(m.mine.has(emoji)) },
        `${emoji} ${n}`,
      )
      on(chip, "click", () => ctx.react(m, emoji))
      return chip
    })
    node.append(el("div", { class: "reactions" }, ...chips))
  }
  return node
}

function renderMeta(m: ChatMessage, ctx: MessageContext, mine: boolean): HTMLElement {
  const meta = el("div", { class: "meta" }, el("span", { class: "time" }, formatTime(m.ts)))
  if (m.edited && !m.recalled) meta.append(el("span", { class: "edited" }, "edited"))
  if (m.outbox === "failed") {
    const retry = el("button", { class: "retry" }, "Retry")
    const discard = el("button", { class: "discard" }, "Discard")
    on(retry, "click", () => ctx.retry(m))
    on(discard, "click", () => ctx.discard(m))
    meta.append(el("span", { class: "error" }, "Not sent"), retry, discard)
    return meta
  }
  if (m.outbox !== undefined) {
    meta.append(el("span", { class: "status" }, "Sending…"))
    return meta
  }
  if (mine && m.seq !== undefined) {
    const n = ctx.readers(m.seq)
    if (n > 0) meta.append(el("span", { class: "receipt" }, ctx.group ? `Read by ${n}` : "Read"))
  }
  if (m.recalled) return meta
  const actions = el("span", { class: "actions" })
  const action = (label: string, cls: string, run: () => void) => {
    const b = el("button", { class: cls, title: label }, label)
    on(b, "click", run)
    actions.append(b)
  }
  action("Reply", "reply", () => ctx.reply(m))
  for (const emoji of QUICK_REACTIONS) action(emoji, "react", () => ctx.react(m, emoji))
  if (mine && m.body?.kind === "text") action("Edit", "edit", () => ctx.edit(m))
  if (mine) action("Recall", "recall", () => ctx.recall(m))
  meta.append(actions)
  return meta
}

/** A file: its name and size at once, then a thumbnail for images once the function made one. */
function renderFile(fileId: string, caption: string | undefined, ctx: MessageContext): HTMLElement {
  const name = el("span", { class: "file-name" }, "File")
  const size = el("span", { class: "file-size muted" })
  const link = el("a", { class: "download", href: "#", role: "button" }, "Download")
  const box = el("div", { class: "file", "data-file-id": fileId }, el("div", {}, name, " ", size), link)
  if (caption !== undefined) box.append(el("div", { class: "text caption" }, caption))
  on(link, "click", (e) => {
    e.preventDefault()
    // Presigned URLs live minutes: ask for a fresh one at the moment of the click.
    ctx.file(fileId, true).then(
      (info) => {
        const url = safeUrl(info.url)
        if (url === undefined) return
        const a = el("a", { href: url, download: info.name, class: "hidden" })
        document.body.append(a)
        a.click()
        a.remove()
      },
      () => link.replaceChildren("Download failed, try again"),
    )
  })
  const show = (attempt: number) => {
    ctx.file(fileId, attempt > 0).then(
      (info) => {
        name.textContent = info.name
        size.textContent = formatBytes(info.size)
        if (!info.content_type.startsWith("image/")) return
        const thumb = info.thumbnail === undefined ? undefined : safeUrl(info.thumbnail.url)
        if (thumb !== undefined) {
          box.querySelector("img")?.remove()
          box.prepend(
            el("img", {
              src: thumb,
              alt: info.name,
              width: info.thumbnail?.width,
              height: info.thumbnail?.height,
              class: "thumbnail",
            }),
          )
        } else if (attempt < 6) {
          // The thumbnails function works from an event after the upload: look again shortly.
          setTimeout(() => show(attempt + 1), 500 * 2 ** attempt)
        }
      },
      () => {
        name.textContent = "File unavailable"
      },
    )
  }
  show(0)
  return box
}
