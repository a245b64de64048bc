/**
 * The signed-in app: wires the SDK's events into the state, and the views' actions into the SDK.
 * Layout: a sidebar (who I am, search, new chat, conversations) and the open conversation.
 */
import { type CoveClient, FrameError } from "../../sdk/src/index"
import { type ChatView, createChatView } from "./chat-view"
import { createComposer } from "./composer"
import { renderConversationList } from "./conversation-list"
import { el, on } from "./dom"
import type { FileInfo, MessageContext } from "./message-view"
import { createNewChat } from "./new-chat"
import { createSearch } from "./search-view"
import { AppState } from "./state"

const HISTORY_PAGE = 50
/** The most the conversations function answers per page. */
const LIST_PAGE = 200
/** A presigned URL is reused for this long (they live FILES_DOWNLOAD_TTL_SECONDS, 5 min by default). */
const FILE_INFO_REUSE_MS = 120_000
const TYPING_SHOWN_MS = 4_000
/** `who` takes 1 to 200 users. */
const WHO_MAX = 200

export function startApp(root: HTMLElement, client: CoveClient, logout: () => void): void {
  const me = client.user
  const state = new AppState(me.id)
  const olderBefore = new Map<string, number | null>()
  const files = new Map<string, { at: number; info: Promise<FileInfo> }>()
  let chat: { conv: string; view: ChatView } | undefined

  // ---- layout
  const connection = el("span", { class: "connection", "data-state": client.connection }, client.connection)
  const logoutButton = el("button", { type: "button", class: "logout" }, "Log out")
  const notice = el("div", { class: "error notice", role: "status" })
  const list = el("ul", { class: "conversations", "aria-label": "Conversations" })
  const search = createSearch({
    search: async (q) => (await client.search({ q, limit: 20 })).items,
    where: (hit) => {
      const c = state.conversations.get(hit.conv)
      return c === undefined ? "" : `${state.titleOf(c)} · ${state.nameOf(hit.conv, hit.from)}`
    },
    open: (hit) => {
      open(hit.conv).then(
        () => chat?.view.reveal(hit.id),
        (err: unknown) => show(err),
      )
    },
  })
  const newChat = createNewChat({
    me: me.id,
    find: (q) => client.users.find(q, { limit: 10 }),
    start: async (people, title) => {
      const members = people.map((p) => p.id)
      const created = await client.conversations.create(
        members.length > 1 || title !== ""
          ? { kind: "group", members, title: title || "Group" }
          : { kind: "direct", members },
      )
      await reloadList()
      await open(created.id)
    },
    show: (err) => show(err),
  })
  const main = el("main", { class: "chat empty-chat" }, el("p", { class: "empty" }, "Choose a conversation"))
  const sidebar = el(
    "aside",
    { class: "sidebar" },
    el(
      "div",
      { class: "me" },
      el("span", { class: "name", title: `Your id: ${me.id}` }, me.username || me.id),
      connection,
      logoutButton,
    ),
    notice,
    search.form,
    search.results,
    newChat,
    list,
  )
  const shell = el("div", { class: "shell" }, sidebar, main)
  root.replaceChildren(shell)
  on(logoutButton, "click", logout)

  const show = (err: unknown) => {
    notice.textContent = err instanceof Error ? err.message : String(err)
  }

  // ---- rendering on change
  state.onChange((change) => {
    if (change.list === true) renderConversationList(list, state, (conv) => void open(conv).catch(show))
    if (chat !== undefined && (change.conv === undefined || change.conv === chat.conv)) chat.view.render()
  })

  // ---- SDK events
  client.on("connection", (s) => {
    connection.dataset.state = s
    connection.textContent = s === "open" ? "online" : s === "connecting" ? "connecting…" : "offline"
    // Presence changes while the page was not connected were never delivered: ask again.
    if (s === "open") askPresence(knownPeople())
  })
  client.on("error", show)
  const onEvent = (e: Parameters<AppState["applyEvent"]>[0]) => {
    if (!state.conversations.has(e.conv)) {
      void reloadList()
      return
    }
    state.applyEvent(e)
    if (chat?.conv === e.conv && e.type === "message" && e.from !== me.id) client.markRead(e.conv, e.seq)
  }
  client.on("message", onEvent)
  client.on("edit", onEvent)
  client.on("recall", onEvent)
  client.on("reaction", onEvent)
  client.on("outbox", (entry) => {
    state.applyOutbox(entry)
    if (entry.state === "failed" && entry.kind !== "send")
      show(entry.error?.message ?? `${entry.kind} failed`)
  })
  client.on("read", (r) => state.read(r.conv, r.user, r.seq))
  client.on("typing", (t) => {
    const c = state.conversations.get(t.conv)
    if (c === undefined || t.user === me.id) return
    c.typing.set(t.user, Date.now() + TYPING_SHOWN_MS)
    state.changed({ conv: t.conv })
    setTimeout(() => state.changed({ conv: t.conv }), TYPING_SHOWN_MS + 50)
  })
  client.on("presence", (p) => {
    state.presence.set(p.user, p.online)
    state.changed({ list: true })
  })
  client.on("membership", (m) => {
    const c = state.conversations.get(m.conv)
    if (c !== undefined) c.members = undefined
    if (m.removed.includes(me.id)) state.conversations.delete(m.conv)
    void reloadList()
  })
  client.on("conversation", (u) => {
    // A rename or a role change: the list (titles) and the open chat's header show it.
    if (u.title !== undefined && state.conversations.has(u.conv)) void reloadList()
  })

  // ---- actions
  async function reloadList(): Promise<void> {
    // Every page: the sidebar shows all of the user's conversations, not only the latest ones.
    let page = await client.conversations.list({ limit: LIST_PAGE })
    const items = [...page.items]
    while (page.next_cursor !== null) {
      page = await client.conversations.list({ limit: LIST_PAGE, cursor: page.next_cursor })
      items.push(...page.items)
    }
    state.setSummaries(items)
    await Promise.all(items.map((s) => loadMembers(s.id)))
    state.changed({ list: true })
  }

  async function loadMembers(conv: string): Promise<void> {
    const c = state.conversations.get(conv)
    if (c === undefined || c.members !== undefined) return
    const { items } = await client.conversations.members(conv)
    c.members = new Map(items.map((m) => [m.id, m.username]))
    // Read positions as stored: receipts are right after a reload, before any live read event.
    for (const m of items) state.read(conv, m.id, m.read_seq)
    askPresence(items.map((m) => m.id))
  }

  /** Everyone in the conversations whose members are loaded. */
  function knownPeople(): string[] {
    const people = new Set<string>()
    for (const c of state.conversations.values()) for (const id of c.members?.keys() ?? []) people.add(id)
    return [...people]
  }

  /** Asks the edge who of these users is online; when not connected, the next "open" asks. */
  function askPresence(users: readonly string[]): void {
    const others = users.filter((id) => id !== me.id)
    if (others.length === 0 || client.connection !== "open") return
    for (let i = 0; i < others.length; i += WHO_MAX) {
      client.who(others.slice(i, i + WHO_MAX)).then(
        (online) => {
          for (const [user, up] of Object.entries(online)) state.presence.set(user, up)
          state.changed({ list: true })
        },
        (err: unknown) => {
          // The socket closed before the answer: the next "open" asks again.
          if (!(err instanceof FrameError && err.code === "NOT_CONNECTED")) show(err)
        },
      )
    }
  }

  async function open(conv: string): Promise<void> {
    const c = state.conversations.get(conv)
    if (c === undefined) return
    state.current = conv
    c.unread = 0
    if (chat?.conv !== conv) {
      const composer = createComposer({
        send: (text, replyTo) => {
          client.send(conv, { kind: "text", text }, replyTo === undefined ? {} : { replyTo })
        },
        edit: (target, text) => {
          client.edit(conv, target.id, { kind: "text", text })
        },
        upload: async (file, progress) => {
          const record = await client.files.upload(conv, file, {
            name: file.name,
            contentType: file.type || "application/octet-stream",
            onProgress: progress,
          })
          client.send(conv, { kind: "file", file_id: record.id })
        },
        typing: () => client.typing(conv),
      })
      const view = createChatView(state, conv, messageContext(conv, composer), composer.element, {
        has: () => typeof olderBefore.get(conv) === "number",
        load: () => loadOlder(conv),
      })
      chat = { conv, view }
      shell.replaceChildren(sidebar, view.element)
      composer.focus()
    }
    state.changed({ list: true, conv })
    await loadMembers(conv)
    if (!c.historyLoaded) {
      const page = await client.messages.history(conv, { limit: HISTORY_PAGE })
      olderBefore.set(conv, page.prev_before)
      state.applyHistory(conv, page.items)
      client.watch(conv, c.lastSeq)
      for (const entry of client.outbox()) if (entry.conv === conv) state.applyOutbox(entry)
    }
    if (c.lastSeq > 0) client.markRead(conv, c.lastSeq)
    state.changed({ list: true, conv })
  }

  async function loadOlder(conv: string): Promise<void> {
    const before = olderBefore.get(conv)
    if (before === null || before === undefined) return
    const page = await client.messages.history(conv, { before, limit: HISTORY_PAGE })
    olderBefore.set(conv, page.prev_before)
    state.applyHistory(conv, page.items)
  }

  function messageContext(conv: string, composer: ReturnType<typeof createComposer>): MessageContext {
    const c = () => state.conversations.get(conv)
    return {
      me: me.id,
      get group() {
        return c()?.summary.kind === "group"
      },
      nameOf: (user) => state.nameOf(conv, user),
      find: (id) => c()?.messages.get(id),
      readers: (seq) => [...(c()?.readBy.values() ?? [])].filter((s) => s >= seq).length,
      reply: (m) => composer.replyTo(m, m.from === me.id ? "yourself" : state.nameOf(conv, m.from)),
      edit: (m) => composer.editing(m),
      recall: (m) => {
        client.recall(conv, m.id)
      },
      react: (m, emoji) => {
        client.react(conv, m.id, emoji, m.mine.has(emoji) ? "remove" : "add")
      },
      retry: (m) => client.retry(m.id),
      discard: (m) => {
        client.discard(m.id)
        state.discard(conv, m.id)
      },
      file: (fileId, fresh = false) => {
        const cached = files.get(fileId)
        if (!fresh && cached !== undefined && Date.now() - cached.at < FILE_INFO_REUSE_MS) return cached.info
        const info = client.files.get(fileId)
        files.set(fileId, { at: Date.now(), info })
        info.catch(() => files.delete(fileId))
        return info
      },
    }
  }

  // ---- start
  reloadList().then(() => {
    for (const entry of client.outbox()) state.applyOutbox(entry)
  }, show)
}
