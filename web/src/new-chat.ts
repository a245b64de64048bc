/**
 * Starting a chat: people are picked by name from the user directory (suggestions while typing;
 * arrows and Enter, or a click), or given by a pasted user id. One person and no group name
 * starts a direct chat; more people, or a group name, a group.
 */
import { el, on } from "./dom"

export type Person = { readonly id: string; readonly username: string }

export type NewChatActions = {
  /** This user, left out of the suggestions. */
  readonly me: string
  find(q: string): Promise<readonly Person[]>
  start(people: readonly Person[], title: string): Promise<void>
  show(err: unknown): void
}

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Ask the directory once typing pauses this long, not on every keystroke. */
const FIND_AFTER_MS = 150
const SUGGESTIONS = 8
/** The directory takes 1 to 64 characters (docs/auth.md); names have at most 32. */
const MAX_QUERY = 64

/** User ids in pasted text, comma or space separated. */
function idsIn(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => USER_ID.test(s))
}

export function createNewChat(a: NewChatActions): HTMLElement {
  const chosen = new Map<string, Person>()
  const chips = el("ul", { class: "chosen", "aria-label": "People in the new chat" })
  const input = el("input", {
    class: "new-members",
    placeholder: "Add people by name",
    "aria-label": "Add people by name",
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": "new-chat-suggestions",
    autocomplete: "off",
  })
  const suggestions = el("ul", {
    class: "suggestions hidden",
    id: "new-chat-suggestions",
    role: "listbox",
    "aria-label": "People found",
  })
  const title = el("input", {
    class: "new-title",
    placeholder: "Group name (groups only)",
    "aria-label": "Group name",
  })
  const start = el("button", { type: "submit" }, "Start chat")
  const form = el("form", { class: "new-chat" }, chips, input, suggestions, title, start)

  let shown: Person[] = []
  let active = -1
  /** Numbers the lookups: an answer to an older one than the latest is dropped. */
  let lookups = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const renderChips = () => {
    chips.replaceChildren(
      ...[...chosen.values()].map((p) => {
        const remove = el(
          "button",
          { type: "button", class: "remove", title: "Remove", "aria-label": `Remove ${p.username}` },
          "×",
        )
        on(remove, "click", () => {
          chosen.delete(p.id)
          renderChips()
        })
        return el("li", { class: "chip", "data-user": p.id }, p.username, remove)
      }),
    )
  }

  const close = () => {
    shown = []
    active = -1
    suggestions.replaceChildren()
    suggestions.classList.add("hidden")
    delete suggestions.dataset.query
    input.setAttribute("aria-expanded", "false")
    input.removeAttribute("aria-activedescendant")
  }

  const renderSuggestions = () => {
    suggestions.classList.remove("hidden")
    input.setAttribute("aria-expanded", "true")
    if (shown.length === 0) {
      suggestions.replaceChildren(el("li", { class: "muted none" }, "No one found"))
      input.removeAttribute("aria-activedescendant")
      return
    }
    suggestions.replaceChildren(
      ...shown.map((p, i) => {
        const item = el(
          "li",
          {
            class: "suggestion",
            id: `new-chat-suggestion-${i}`,
            role: "option",
            "aria-selected": String(i === active),
            "data-user": p.id,
          },
          p.username,
        )
        on(item, "click", () => pick(p))
        return item
      }),
    )
    input.setAttribute("aria-activedescendant", `new-chat-suggestion-${active}`)
  }

  const pick = (p: Person) => {
    chosen.set(p.id, p)
    input.value = ""
    lookups++
    close()
    renderChips()
    input.focus()
  }

  const lookup = () => {
    const q = input.value.trim()
    const n = ++lookups
    // Pasted ids need no lookup; nor does text longer than any name (the directory refuses it).
    if (q === "" || idsIn(q).length > 0 || q.length > MAX_QUERY) return close()
    a.find(q).then(
      (people) => {
        if (n !== lookups) return
        // The person the arrows were on stays chosen when a later answer comes in.
        const current = shown[active]?.id
        shown = people.filter((p) => p.id !== a.me && !chosen.has(p.id)).slice(0, SUGGESTIONS)
        const kept = shown.findIndex((p) => p.id === current)
        active = shown.length === 0 ? -1 : Math.max(0, kept)
        suggestions.dataset.query = q
        renderSuggestions()
      },
      (err: unknown) => {
        if (n === lookups) a.show(err)
      },
    )
  }

  on(input, "input", () => {
    clearTimeout(timer)
    timer = setTimeout(lookup, FIND_AFTER_MS)
  })
  on(input, "keydown", (e) => {
    // Keys that confirm an input method's composition belong to it (pinyin, kana, ...).
    if (e.isComposing || e.keyCode === 229) return
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (shown.length === 0) return
      e.preventDefault()
      active = (active + (e.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length
      renderSuggestions()
    } else if (e.key === "Enter") {
      const p = shown[active]
      if (p === undefined) return
      // Enter picks the suggestion instead of submitting the form.
      e.preventDefault()
      pick(p)
    } else if (e.key === "Escape") close()
  })

  on(form, "submit", (e) => {
    e.preventDefault()
    const typed = input.value.trim()
    // Pasted ids (comma or space separated) are taken as they are; the page learns their names
    // from the new conversation's members.
    const ids = idsIn(typed).filter((id) => !chosen.has(id))
    if (typed !== "" && ids.length === 0) {
      a.show("Pick people from the suggestions.")
      return
    }
    const people = [...chosen.values(), ...ids.map((id) => ({ id, username: id }))]
    if (people.length === 0) return
    start.disabled = true
    a.start(people, title.value.trim()).then(
      () => {
        chosen.clear()
        input.value = ""
        title.value = ""
        start.disabled = false
        lookups++
        close()
        renderChips()
      },
      (err: unknown) => {
        start.disabled = false
        a.show(err)
      },
    )
  })
  return form
}
