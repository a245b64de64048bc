/** The HTTP functions as the SDK offers them: conversations, history, integrator sends, files, search, the user directory. */
import type { Http } from "./http"
import type { TokenAnswer } from "./tokens"
import type { MessageBody, StoredEvent, StoredMessage, User } from "./types"
import { type Transfer, type UploadOptions, upload } from "./uploads"

export type { FileView, UploadOptions } from "./uploads"

export type Conversation = {
  id: string
  kind: "direct" | "group"
  title: string | null
  created_by: string
  created_at: string
}
export type Role = "owner" | "admin" | "member"
export type ConversationSummary = Conversation & {
  role: Role
  unread: number
  last_read_seq: number
  last_message: StoredMessage | null
}
export type ConversationPage = { items: ConversationSummary[]; next_cursor: string | null }
/** `read_seq`: how far that member has read (for "Read" and "Read by N" before any live read event). */
export type Member = { id: string; username: string; role: Role; joined_at: string; read_seq: number }
export type HistoryPage = { items: StoredEvent[]; next_after: number | null; prev_before: number | null }
export type Download = {
  url: string
  name: string
  size: number
  content_type: string
  thumbnail?: { url: string; width: number; height: number }
}
export type SearchHit = { conv: string; seq: number; id: string; from: string; ts: string; snippet: string }
export type SearchQuery = {
  q: string
  conv?: string
  from?: string
  after?: string
  before?: string
  limit?: number
  cursor?: string
}

const enc = encodeURIComponent

export function conversationsApi(http: Http, created: (conv: Conversation) => void) {
  return {
    /** A page, the most recently active first; pass `next_cursor` as `cursor` for the next (null: the last). */
    list: (o: { limit?: number; cursor?: string | undefined } = {}) =>
      http.json<ConversationPage>("GET", "conversations", { query: { limit: o.limit, cursor: o.cursor } }),
    /** A new conversation is watched from seq 0, so its first messages are emitted too. */
    create: async (o: { kind: "direct" | "group"; members: string[]; title?: string }) => {
      const answer = await http.request<Conversation>("POST", "conversations", { body: o })
      if (answer.status === 201) created(answer.body)
      return answer.body
    },
    get: (id: string) => http.json<Conversation & { role: Role }>("GET", `conversations/${enc(id)}`),
    members: (id: string, o: { after?: string; limit?: number } = {}) =>
      http.json<{ items: Member[]; next_after: string | null }>("GET", `conversations/${enc(id)}/members`, {
        query: o,
      }),
    addMembers: (id: string, users: string[]) =>
      http.json<{ added: string[] }>("POST", `conversations/${enc(id)}/members`, {
        body: { members: users },
      }),
    removeMember: (id: string, user: string) =>
      http.json<{ removed: string[] }>("DELETE", `conversations/${enc(id)}/members/${enc(user)}`),
    leave: (id: string) => http.json<{ left: string }>("POST", `conversations/${enc(id)}/leave`),
    rename: (id: string, title: string) =>
      http.json<Conversation & { role: Role }>("PATCH", `conversations/${enc(id)}`, { body: { title } }),
  }
}

export function messagesApi(http: Http, newId: () => string) {
  return {
    history: (conv: string, o: { after?: number; before?: number; limit?: number } = {}) =>
      http.json<HistoryPage>("GET", "messages", { query: { conv, ...o } }),
    /** The integrators' send over HTTP: accepted means durable; retry with the same `id`. */
    send: (conv: string, body: MessageBody, o: { id?: string; replyTo?: string } = {}) =>
      http.json<{ id: string; conv: string; status: "accepted"; duplicate: boolean }>("POST", "messages", {
        body: {
          id: o.id ?? newId(),
          conv,
          body,
          ...(o.replyTo === undefined ? {} : { reply_to: o.replyTo }),
        },
      }),
  }
}

export function filesApi(http: Http, transfer: Transfer) {
  return {
    /** Uploads and completes; the answer is the ready file, to send as `{kind: "file", file_id}`. */
    upload: (conv: string, data: Blob | Uint8Array, o: UploadOptions) =>
      upload(http, transfer, conv, data, o),
    /** Where to download it (a presigned URL valid for minutes), with its name, size and type. */
    get: (id: string) => http.json<Download>("GET", `files/${enc(id)}`),
    abort: (id: string) => http.json<undefined>("POST", `files/${enc(id)}/abort`),
  }
}

export function searchApi(http: Http) {
  return (q: SearchQuery) =>
    http.json<{ items: SearchHit[]; next_cursor: string | null }>("GET", "search", { query: q })
}

export function usersApi(http: Http) {
  return {
    /**
     * The directory (docs/auth.md): enabled users whose name starts with `q` (1 to 64 characters,
     * folded like usernames, so "ana" finds "Ana"), in name order, the caller included.
     */
    find: async (q: string, o: { limit?: number } = {}): Promise<User[]> =>
      (await http.json<{ items: User[] }>("GET", "auth/users", { query: { q, limit: o.limit } })).items,
  }
}

export function authApi(http: Http) {
  return {
    me: () =>
      http
        .json<{ user: User & { admin: boolean; created_at: string } }>("GET", "auth/me")
        .then((a) => a.user),
    login: (username: string, password: string) =>
      http.json<TokenAnswer>("POST", "auth/login", { body: { username, password }, auth: false }),
    register: (username: string, password: string, adminToken?: string) =>
      http.json<TokenAnswer>("POST", "auth/register", {
        body: { username, password },
        auth: false,
        ...(adminToken === undefined ? {} : { headers: { authorization: `Bearer ${adminToken}` } }),
      }),
    refresh: (refreshToken: string) =>
      http.json<TokenAnswer>("POST", "auth/refresh", { body: { refresh_token: refreshToken }, auth: false }),
    logout: (refreshToken: string, everywhere: boolean) =>
      http.json<undefined>("POST", "auth/logout", {
        body: { refresh_token: refreshToken, everywhere },
        auth: false,
      }),
  }
}
