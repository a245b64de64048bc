/**
 * The open conversation: header (name, presence or members), the messages in seq order with the
 * ones still in the outbox after them, and who is typing. Bubbles are redrawn only when their
 * message changed, so images and scroll positions stay put.
 */
import { el, on } from "./dom"
import { type MessageContext, renderMessage } from "./message-view"
import type { AppState, ChatMessage } from "./state"

export type ChatView = {
  readonly element: HTMLElement
  render(): void
  /** Scrolls to a message and outlines it; false if it is not loaded. */
  reveal(id: string): boolean
}

export function createChatView(
  state: AppState,
  conv: string,
  ctx: MessageContext,
  composer: HTMLElement,
  older: { has(): boolean; load(): Promise<void> },
): ChatView {
  const title = el("div", { class: "title" })
  const subtitle = el("div", { class: "muted subtitle" })
  const olderButton = el("button", { class: "older hidden", type: "button" }, "Load earlier messages")
  const list = el("div", { class: "messages", role: "log", "aria-label": "Messages" })
  const typing = el("div", { class: "typing", "aria-live": "polite" })
  const element = el(
    "section",
    { class: "chat", "data-conv": conv },
    el("header", { class: "chat-header" }, title, subtitle),
    list,
    typing,
    composer,
  )
  const drawn = new Map<
    string,
    { message: ChatMessage; version: number; readers: number; node: HTMLElement }
  >()
  on(olderButton, "click", () => {
    olderButton.disabled = true
    older.load().then(
      () => {
        olderButton.disabled = false
        render()
      },
      () => {
        olderButton.disabled = false
      },
    )
  })

  const render = () => {
    const c = state.conversations.get(conv)
    if (c === undefined) return
    title.textContent = state.titleOf(c)
    const peer = state.peerOf(c)
    subtitle.textContent =
      peer !== undefined
        ? state.presence.get(peer) === true
          ? "online"
          : "offline"
        : `${c.members?.size ?? "…"} members`
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
    const messages = state.messagesOf(conv)
    const nodes: HTMLElement[] = []
    const seen = new Set<string>()
    for (const m of messages) {
      seen.add(m.id)
      const known = drawn.get(m.id)
      // Receipts depend on others' read positions, which change without the message changing.
      const readers = m.from === state.me && m.seq !== undefined ? ctx.readers(m.seq) : 0
      if (
        known !== undefined &&
        known.message === m &&
        known.version === m.version &&
        known.readers === readers
      ) {
        nodes.push(known.node)
        continue
      }
      const node = renderMessage(m, ctx)
      drawn.set(m.id, { message: m, version: m.version, readers, node })
      nodes.push(node)
    }
    for (const id of drawn.keys()) if (!seen.has(id)) drawn.delete(id)
    olderButton.classList.toggle("hidden", !older.has())
    list.replaceChildren(olderButton, ...nodes)
    const now = Date.now()
    const names = [...c.typing].filter(([, until]) => until > now).map(([user]) => state.nameOf(conv, user))
    typing.textContent =
      names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`
    const last = messages.at(-1)
    if (atBottom || last?.from === state.me) list.scrollTop = list.scrollHeight
  }

  return {
    element,
    render,
    reveal(id) {
      const node = drawn.get(id)?.node
      if (node === undefined) return false
      for (const other of list.querySelectorAll(".highlight")) other.classList.remove("highlight")
      node.classList.add("highlight")
      node.scrollIntoView({ block: "center" })
      return true
    },
  }
}
