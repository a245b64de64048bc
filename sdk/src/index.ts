/** @cove/sdk: the Cove client SDK for browsers and Node.js (sdk/README.md). */
export type {
  Conversation,
  ConversationPage,
  ConversationSummary,
  Download,
  FileView,
  HistoryPage,
  Member,
  Role,
  SearchHit,
  SearchQuery,
  UploadOptions,
} from "./api"
export { type ClientOptions, CoveClient, FrameError, type LoginOptions, type RegisterOptions } from "./client"
export type { ReconnectPolicy } from "./connection"
export { HttpError } from "./http"
export { browserStorage, memoryStorage } from "./storage"
export type * from "./types"
