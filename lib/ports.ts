/** What the domain needs from the outside world, named for the domain, not for a driver. */
import type {
  InboundEvent,
  MembershipEvent,
  ReadReceipt,
  StoredEvent,
  StoredMessage,
} from "./protocol/events"
import type { UserRevokedEvent } from "./protocol/tokens"

/** Why the sequencer refuses an event (it is dead-lettered with this code). */
export type RefusalCode =
  | "NOT_A_MEMBER"
  | "TARGET_NOT_FOUND"
  | "TARGET_RECALLED"
  | "FORBIDDEN"
  /** The event's id is already used in the conversation by someone else (ids name targets). */
  | "ID_TAKEN"
  /** A file message (or edit) names a file that is unknown or not uploaded completely. */
  | "FILE_NOT_READY"
  /** ... a file that someone else uploaded. */
  | "FILE_NOT_SENDERS"
  /** ... a file uploaded to another conversation. */
  | "FILE_OTHER_CONVERSATION"

export type ApplyResult = {
  /** Newly sequenced events, in the order they were given. */
  readonly stored: readonly StoredEvent[]
  /** Stored earlier (a redelivery or a client retry), as they were stored. */
  readonly duplicates: readonly StoredEvent[]
  readonly refused: ReadonlyArray<{ readonly event: InboundEvent; readonly code: RefusalCode }>
  /** Read positions that moved forward. */
  readonly reads: readonly ReadReceipt[]
}

export type SequencerStore = {
  /**
   * Applies a batch atomically: each conversation's seq events get contiguous seqs, edits and
   * recalls and reactions change their target, reads move forward. Idempotent on (sender, id).
   */
  apply(events: readonly InboundEvent[], now: Date): Promise<ApplyResult>
}

export type HistoryQuery =
  /** Events after `after`, oldest first (forward sync, gap filling). */
  | { readonly direction: "forward"; readonly after: number; readonly limit: number }
  /** The `limit` events before `before` (or the latest), returned oldest first. */
  | { readonly direction: "backward"; readonly before: number | undefined; readonly limit: number }

export type HistoryStore = {
  /**
   * One page of a conversation's events (messages as they are now), plus whether more lies
   * beyond. `reader` is the member asking: each message lists their own reactions.
   */
  history(
    conversationId: string,
    query: HistoryQuery,
    reader: string,
  ): Promise<{ items: StoredEvent[]; more: boolean }>
}

export type DeliveryBus = {
  /** Tells every edge serving the conversation; at-most-once, clients fill gaps from history. */
  deliver(events: ReadonlyArray<StoredEvent | ReadReceipt>): Promise<void>
}

/** Tells senders which of their acked events the sequencer refused; at-most-once (core NATS). */
export type RefusalNotices = {
  tell(refused: ApplyResult["refused"]): Promise<void>
}

/** The stream of what the sequencer stored, for followers such as search indexing. */
export type StoredEventLog = {
  /** Durable once it resolves; the same event published twice is stored once. */
  publish(events: readonly StoredEvent[]): Promise<void>
}

/** The write-ahead log of new messages (JetStream); what it accepted is durable. */
export type InboundLog = {
  append(event: InboundEvent, requestId: string): Promise<{ readonly duplicate: boolean }>
}

// ---- Identity (functions/auth) ---------------------------------------------------------------

export type User = {
  readonly id: string
  readonly username: string
  readonly passwordHash: string
  readonly isAdmin: boolean
  readonly disabledAt: Date | undefined
  readonly createdAt: Date
}

export type NewUser = {
  readonly id: string
  readonly username: string
  readonly usernameKey: string
  readonly passwordHash: string
  readonly createdAt: Date
}

export type CreateUserResult =
  | { readonly kind: "created"; readonly user: User }
  | { readonly kind: "taken" }
  /** `onlyIfFirst` was set and an account exists already. */
  | { readonly kind: "closed" }

export type UserStore = {
  /** Inserts the user, atomically: the first user ever becomes admin. */
  create(user: NewUser, options: { onlyIfFirst: boolean }): Promise<CreateUserResult>
  anyExists(): Promise<boolean>
  byKey(usernameKey: string): Promise<User | undefined>
  byId(id: string): Promise<User | undefined>
  setPasswordHash(id: string, passwordHash: string): Promise<void>
  /** Sets or clears disabled_at; undefined when there is no such user. */
  setDisabled(id: string, disabledAt: Date | undefined): Promise<User | undefined>
  /** Enabled users whose folded name starts with `keyPrefix`, in name order. */
  findByPrefix(keyPrefix: string, limit: number): Promise<DirectoryEntry[]>
}

/** What any signed-in user may know of another: enough to start a conversation. */
export type DirectoryEntry = { readonly id: string; readonly username: string }

export type RefreshTokenRecord = {
  readonly familyId: string
  readonly userId: string
  readonly expiresAt: Date
  readonly rotatedAt: Date | undefined
  readonly familyRevokedAt: Date | undefined
}

export type NewRefreshToken = { readonly hash: Buffer; readonly expiresAt: Date }

export type SessionStore = {
  /** Starts a login: a new family holding its first refresh token. */
  start(session: { familyId: string; userId: string; token: NewRefreshToken; now: Date }): Promise<void>
  find(hash: Buffer): Promise<RefreshTokenRecord | undefined>
  /**
   * Marks `hash` rotated and stores its successor, atomically and only if `hash` was not rotated
   * yet and its family is live. False means someone else used it first.
   */
  rotate(hash: Buffer, next: NewRefreshToken, now: Date): Promise<boolean>
  /** Revokes one login session and queues `notice` for the edges (keyed by the user), atomically. */
  revokeFamily(familyId: string, reason: string, now: Date, notice: UserRevokedEvent): Promise<void>
  /** Revokes every live family of the user and queues `notice`, atomically; returns how many. */
  revokeUser(userId: string, reason: string, now: Date, notice: UserRevokedEvent): Promise<number>
  /** Whether the login session exists, belongs to the user and is not revoked. */
  isLive(familyId: string, userId: string): Promise<boolean>
}

export type SealedSigningKey = {
  readonly kid: string
  readonly publicJwk: Readonly<Record<string, string>>
  readonly privateKeySealed: Buffer
  readonly kekId: string
  readonly createdAt: Date
}

export type SigningKeyStore = {
  /** The one key that signs, if any. */
  active(): Promise<SealedSigningKey | undefined>
  /** Stores `key` as the active key unless one exists already (first start of several instances). */
  insertIfNoneActive(key: SealedSigningKey): Promise<void>
  /** Retires the active key (kept public until `publishedUntil`) and makes `key` active, atomically. */
  rotate(key: SealedSigningKey, now: Date, publishedUntil: Date): Promise<void>
  /** Public JWKs of the active key and of retired keys still published at `now`. */
  published(now: Date): Promise<ReadonlyArray<Readonly<Record<string, string>>>>
}

export type ThrottleKey = { readonly scope: "account" | "address"; readonly key: string }

export type ThrottleDecision = { readonly allowed: true } | { readonly allowed: false; readonly until: Date }

export type LoginThrottle = {
  /**
   * Counts one attempt for every key, atomically and before the password is checked, so a burst
   * of parallel guesses is counted as it arrives. Refused without counting if any key is blocked.
   * `blockFor(scope, attempts)` gives the delay in ms that this attempt imposes on the next one.
   */
  attempt(
    keys: readonly ThrottleKey[],
    now: Date,
    rules: { windowMs: number; blockFor: (scope: ThrottleKey["scope"], attempts: number) => number },
  ): Promise<ThrottleDecision>
  /** After a good password: forgets the account's attempts and takes back this one for the address. */
  succeeded(account: ThrottleKey, address: ThrottleKey | undefined): Promise<void>
}

/**
 * An event the edges must not miss. It is queued in the transaction that makes the change it
 * tells of (the control outbox), so that no crash or NATS outage after the commit loses it.
 */
export type ControlEvent =
  | { readonly kind: "membership"; readonly event: MembershipEvent }
  | { readonly kind: "revoked"; readonly event: UserRevokedEvent }

export type ControlOutbox = {
  /**
   * Publishes the events queued under `key` (a conversation's id, or a user's for revocations),
   * oldest first, and answers once NATS has stored them. False when it could not now: they stay
   * queued and the outbox's relay publishes them later, still in order.
   */
  flush(key: string): Promise<boolean>
}

// ---- Conversations ------------------------------------------------------------------------

export type Role = "owner" | "admin" | "member"

export type Conversation = {
  readonly id: string
  readonly kind: "direct" | "group"
  readonly title: string | null
  readonly createdBy: string
  readonly createdAt: Date
}

export type Member = {
  readonly userId: string
  readonly username: string
  readonly role: Role
  readonly joinedAt: Date
  /** The member's read position: clients show who has read what after a reload. */
  readonly readSeq: number
}

export type ConversationSummary = Conversation & {
  readonly role: Role
  readonly unread: number
  readonly lastReadSeq: number
  readonly lastMessage: StoredMessage | null
}

/**
 * Where a conversation stands in a user's list: its last activity (the later of its creation
 * and the latest `ts` of its messages) in microseconds since 1970 as stored, then its id.
 */
export type ConversationPosition = {
  readonly activeMicros: number
  readonly id: string
}

/**
 * Every change of members queues its membership event in the same transaction (ControlEvent,
 * keyed by the conversation); the caller flushes the outbox after it returns.
 */
export type ConversationStore = {
  /** The direct conversation of two users, created if missing by `a`; `created` tells which. */
  openDirect(
    id: string,
    a: string,
    b: string,
    now: Date,
  ): Promise<{ conversation: Conversation; created: boolean }>
  createGroup(
    id: string,
    title: string,
    owner: string,
    members: readonly string[],
    now: Date,
  ): Promise<Conversation>
  get(conversationId: string): Promise<Conversation | undefined>
  /** The caller's role, or undefined when they are not a member. */
  roleOf(conversationId: string, userId: string): Promise<Role | undefined>
  /**
   * The user's conversations, the most recently active first (ties by id), starting after
   * `after`; `next` is the last one's position when more follow.
   */
  listFor(
    userId: string,
    page: { readonly limit: number; readonly after: ConversationPosition | undefined },
  ): Promise<{ items: ConversationSummary[]; next: ConversationPosition | undefined }>
  /** Every conversation the user is in (edges load this once per connecting user). */
  idsFor(userId: string): Promise<string[]>
  /** The user's conversations with how many members each has (for the edge's presence). */
  idsWithSizesFor(userId: string): Promise<Array<{ id: string; members: number }>>
  members(conversationId: string, after: string | undefined, limit: number): Promise<Member[]>
  /**
   * Adds those not yet members, as `member`, unless the group would then have more than
   * `maxMembers`; returns who was added, or "full".
   */
  addMembers(
    conversationId: string,
    userIds: readonly string[],
    now: Date,
    maxMembers: number,
    by: string,
  ): Promise<string[] | "full">
  /** Removes a member; an owner who leaves hands ownership to the longest-standing member. */
  removeMember(conversationId: string, userId: string, by: string): Promise<boolean>
  setRole(conversationId: string, userId: string, role: Exclude<Role, "owner">): Promise<boolean>
  rename(conversationId: string, title: string): Promise<void>
  /** Which of these ids are active (not disabled) users. */
  activeUsers(userIds: readonly string[]): Promise<Set<string>>
}

/** Members' devices hear of other changes to a conversation (core NATS, at-most-once). */
export type ConversationUpdates = {
  /** A group renamed, or a member's role changed: members' devices are told. */
  updated(event: {
    conv: string
    by: string
    title?: string
    role?: { readonly user: string; readonly role: "admin" | "member" }
  }): Promise<void>
}

/** Who is calling an HTTP function: from a verified access token of a live session. */
export type Caller = { readonly userId: string; readonly sessionId: string }

export type Authenticator = {
  /** Verifies an access token; AUTH_TOKEN_INVALID / _EXPIRED / AUTH_SESSION_REVOKED otherwise. */
  authenticate(token: string): Promise<Caller>
}

// ---- Files (functions/files, functions/thumbnails) -----------------------------------------

export type FileStatus = "pending" | "ready"

export type Thumbnail = { readonly width: number; readonly height: number; readonly size: number }

export type FileRecord = {
  /** Server-generated, in the safe alphabet; the object keys derive from it alone. */
  readonly id: string
  readonly conversationId: string
  readonly ownerId: string
  readonly name: string
  readonly size: number
  readonly contentType: string
  /** Lowercase hex, when the uploader declared it. */
  readonly sha256: string | undefined
  readonly status: FileStatus
  /** The store's multipart upload id, for large files until they are complete. */
  readonly uploadId: string | undefined
  readonly createdAt: Date
  readonly thumbnail: Thumbnail | undefined
}

export type NewFile = Omit<FileRecord, "status" | "thumbnail">

export type FileStore = {
  create(file: NewFile): Promise<void>
  get(id: string): Promise<FileRecord | undefined>
  /** pending → ready; false when it was not pending (already ready, or gone). */
  markReady(id: string, now: Date): Promise<boolean>
  /** Deletes the record if it is still pending; false when it was not (ready, or gone). */
  removePending(id: string): Promise<boolean>
  /** Pending files created before `before`, oldest first. */
  expiredPending(before: Date, limit: number): Promise<FileRecord[]>
  setThumbnail(id: string, thumbnail: Thumbnail): Promise<void>
  /**
   * Deletes up to `limit` ready files, made ready before `before`, that no message shows (never
   * sent, or recalled), atomically against a file message being sequenced; returns them.
   */
  removeUnreferenced(before: Date, limit: number): Promise<FileRecord[]>
}

/** What a client needs to send the bytes of a single-request upload. */
export type PresignedUpload = {
  readonly method: "PUT" | "POST"
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  readonly fields?: Readonly<Record<string, string>>
}

export type StoredObject = { readonly size: number; readonly contentType: string | undefined }

/** The S3-compatible store, through presigned URLs for clients and direct calls for checks. */
export type ObjectStore = {
  /** A PUT whose length and type are signed: a real store refuses any other body. */
  presignPut(
    key: string,
    o: { size: number; contentType: string; ttlSeconds: number },
  ): Promise<PresignedUpload>
  /** A browser form POST whose policy holds the exact length (content-length-range) and type. */
  presignPost(
    key: string,
    o: { size: number; contentType: string; ttlSeconds: number },
  ): Promise<PresignedUpload>
  startMultipart(key: string, contentType: string): Promise<string>
  /** One part's PUT, its length signed. */
  presignPart(
    key: string,
    o: { uploadId: string; partNumber: number; size: number; ttlSeconds: number },
  ): Promise<string>
  /** Joins the parts (numbers and ETags as the client received them); false when the upload is gone. */
  completeMultipart(
    key: string,
    uploadId: string,
    parts: ReadonlyArray<{ number: number; etag: string }>,
  ): Promise<boolean>
  abortMultipart(key: string, uploadId: string): Promise<void>
  head(key: string): Promise<StoredObject | undefined>
  /** Streams the object through SHA-256; lowercase hex. */
  sha256(key: string): Promise<string>
  read(key: string, maxBytes: number): Promise<Buffer>
  write(key: string, body: Buffer, contentType: string): Promise<void>
  /** A short-lived GET that makes the browser save the file under `fileName`. */
  presignGet(key: string, o: { fileName: string; contentType: string; ttlSeconds: number }): Promise<string>
  remove(keys: readonly string[]): Promise<void>
}

/** A file became ready (JetStream, awaited): followers such as thumbnailing pick it up. */
export type FileEvents = {
  ready(file: FileRecord): Promise<void>
}

// ---- Search (functions/index, functions/search) ------------------------------------------------

/**
 * One message's row in the search index. `content` and `vector` (tsvector text) are null once the
 * message is recalled. Only rows whose `version` is at least the stored one are written.
 */
export type SearchDocument = {
  readonly conv: string
  readonly id: string
  readonly version: number
  readonly content: string | null
  readonly vector: string | null
} & (
  | /** A whole row: the message itself (inserted if missing). */ {
      readonly seq: number
      readonly from: string
      readonly ts: string
    }
  | /** A change to a row that exists (an edit or a recall). */ { readonly seq?: undefined }
)

export type SearchIndex = {
  /** Writes a batch of rows in one statement; idempotent. */
  write(docs: readonly SearchDocument[]): Promise<void>
}

/** The messages table as the rebuild reads it: messages in (conversation, seq) order. */
export type SearchSource = {
  count(): Promise<number>
  /**
   * The next messages after `after`, as they are now, each with `version`: the conversation's
   * last seq in the same snapshot (every event up to it is reflected in the row).
   */
  messagesAfter(
    after: { conv: string; seq: number } | undefined,
    limit: number,
  ): Promise<
    Array<{
      conv: string
      seq: number
      id: string
      from: string
      ts: string
      version: number
      body: unknown
    }>
  >
}

/** File names for file messages, by file id (functions/files keeps them). */
export type FileNames = {
  namesOf(fileIds: readonly string[]): Promise<Map<string, string>>
}

export type SearchCursor = {
  readonly rank: string
  readonly ts: string
  readonly conv: string
  readonly seq: number
}

export type SearchHit = {
  readonly conv: string
  readonly seq: number
  readonly id: string
  readonly from: string
  readonly ts: string
  readonly content: string
  /** Where the hit is in the order (ts_rank and sent_at exactly as stored), for the cursor. */
  readonly position: SearchCursor
}

export type SearchStore = {
  /**
   * Hits of `match` (tsquery text) in `conversations`, best first by `match`'s rank, then newest,
   * then by conversation and seq; after the cursor's position when given. `scope` (tsquery text
   * of the conversations' lexemes) lets the index itself keep only those conversations, and
   * `months` (tsquery text of month lexemes) only those months. `candidates` counts every hit
   * before the cursor and the limit.
   */
  search(q: {
    match: string
    scope: string | undefined
    months: string | undefined
    conversations: readonly string[]
    from: string | undefined
    after: Date | undefined
    before: Date | undefined
    cursor: SearchCursor | undefined
    limit: number
  }): Promise<{ hits: SearchHit[]; candidates: number }>
}

/** Makes a small preview of an image; undefined when the image cannot be decoded. */
export type ThumbnailMaker = {
  make(
    image: Buffer,
    maxPx: number,
  ): Promise<{ readonly data: Buffer; readonly width: number; readonly height: number } | undefined>
}
