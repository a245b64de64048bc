/** The sidebar's conversations: name, presence for direct chats, unread count, last message. */
import { el, on } from "./dom"
import { type AppState, preview } from "./state"

export function renderConversationList(
  list: HTMLElement,
  state: AppState,
  open: (conv: string) => void,
): void {
  const items = state.ordered().map((c) => {
    const peer = state.peerOf(c)
    const last = c.lastMessage
    const lastLine =
      last === undefined
        ? ""
        : `${last.from === state.me ? "You" : state.nameOf(c.summary.id, last.from)}: ${preview(last)}`
    const item = el(
      "li",
      {
        class: "conversation",
        "data-conv": c.summary.id,
        "aria-current": state.current === c.summary.id ? "true" : "false",
        tabindex: 0,
        role: "button",
      },
      el(
        "span",
        { class: "title" },
        peer === undefined
          ? null
          : el("span", { class: "presence-dot", "data-online": String(state.presence.get(peer) === true) }),
        state.titleOf(c),
      ),
      c.unread > 0
        ? el("span", { class: "unread", "aria-label": `${c.unread} unread` }, String(c.unread))
        : null,
      el("span", { class: "last" }, lastLine),
    )
    on(item, "click", () => open(c.summary.id))
    on(item, "keydown", (e) => {
      if (e.key === "Enter") open(c.summary.id)
    })
    return item
  })
  list.replaceChildren(...items)
}
